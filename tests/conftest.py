"""Shared fixtures: unique worker ids, and the protobuf fast path installed first."""

import itertools

import pytest

import envs  # noqa: F401  (protobuf fast path before any mlagents_envs import)

# Worker ids 10-39 belong to the protocol tests; other modules pick their own range.
_worker_ids = itertools.count(10)


@pytest.fixture
def worker_id() -> int:
    """A worker id no other test in this session uses (port 5005 + id)."""
    return next(_worker_ids)


@pytest.fixture(scope="module")
def local_ray():
    """A fresh local Ray instance for one test module (2 CPUs, no dashboard)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="warning")
    yield
    ray.shutdown()
