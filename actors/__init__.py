"""Env worker actors: each runs one env instance on its own worker id (issues 4 and 5)."""
