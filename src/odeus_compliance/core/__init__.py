"""Shared primitives below every other package: the clock and whole-or-nothing file writes.

Nothing here imports another package of the project, so any layer may use it.
"""
