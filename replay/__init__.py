"""The shared replay buffer and its Ray actor (issues 4 and 5)."""
