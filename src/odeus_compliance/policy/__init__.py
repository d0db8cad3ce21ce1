"""Policies: the files that say how each export column is pseudonymised, minimised or dropped."""
