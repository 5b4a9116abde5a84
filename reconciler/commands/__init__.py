"""The commands that read a cloud and may change it, `plan` and `apply`, for one root or several in one run
(reconciler.roots). reconciler.cli parses the command line, checks the flags' bounds and hands over here;
each module wires the steps of one command together and holds no rule of its own."""
