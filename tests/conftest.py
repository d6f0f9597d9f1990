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


@pytest.fixture
def main_run(monkeypatch, capsys):
    """Run launch.main in this process, as launch.py would, and return what a subprocess
    run gives (returncode, stdout, stderr): ~10 s of imports cheaper per run."""
    import subprocess

    import launch

    monkeypatch.setattr(launch, "stop_on_sigterm", lambda: None)  # not in pytest's process

    def run(*args: str) -> subprocess.CompletedProcess:
        rc = launch.main(list(args))
        out = capsys.readouterr()
        return subprocess.CompletedProcess(["launch.py", *args], rc, out.out, out.err)

    return run


@pytest.fixture
def main_error(main_run):
    """main_run for a run that must fail: checks exit status 2 and exactly one 'error: '
    line on stderr, and returns (that line, stdout)."""

    def run(*args: str) -> tuple[str, str]:
        done = main_run(*args)
        errors = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(errors) == 1 and errors[0].startswith("error: "), \
            done.stderr
        return errors[0], done.stdout

    return run
