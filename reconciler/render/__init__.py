"""Renderings of a plan: pure functions from the plan's JSON document to text."""
