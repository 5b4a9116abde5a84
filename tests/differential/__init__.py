"""Issue 20's differential test: the planner against a frozen copy of the one the issue started from. Deleted
at the end of issue 20."""
