"""The shared replay: the ring buffer, prioritized replay on a sum tree, and the server with
its samples-per-insert rate limiter (ray_replay.py is its Ray wrapper)."""
