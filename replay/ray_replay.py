"""The shared replay as a Ray actor: the plain `ReplayServer`, served one call at a time.

Serial execution is what keeps the ring buffer and the rate limiter consistent; the
calls are made cheap instead (chunked inserts, many batches per sample call).
"""

import ray

from replay.server import ReplayServer

ReplayActor = ray.remote(ReplayServer)
