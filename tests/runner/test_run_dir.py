"""The run folder: created, reused on --resume, replaced on --force, never anything else."""

import pytest

from runner.errors import RunError
from runner.run_dir import prepare_run_dir


def test_force_never_deletes_outside_one_run_folder(tmp_path):
    """--run-id '..' --force deleted the folder above --results-dir, and '' every run."""
    results = tmp_path / "results"
    (results / "precious").mkdir(parents=True)
    (tmp_path / "other.txt").write_text("keep me")
    for run_id in ("..", "", ".", "../results", str(tmp_path)):
        with pytest.raises(RunError, match="--run-id must be a plain folder name"):
            prepare_run_dir(str(results), run_id, resume=False, force=True, inference=False)
    assert (results / "precious").is_dir() and (tmp_path / "other.txt").exists()


def test_resume_without_a_checkpoint_says_so_before_anything_starts(tmp_path):
    (tmp_path / "r" / "env_logs").mkdir(parents=True)
    for resume, inference in ((True, False), (False, True)):
        with pytest.raises(RunError, match="has no checkpoint .* --force instead of --resume"):
            prepare_run_dir(str(tmp_path), "r", resume=resume, force=False,
                            inference=inference)


def test_force_replaces_the_run_and_resume_reuses_it(tmp_path):
    (tmp_path / "r" / "checkpoints").mkdir(parents=True)
    (tmp_path / "r" / "checkpoints" / "latest.pt").write_bytes(b"x")
    assert prepare_run_dir(str(tmp_path), "r", True, False, False) == str(tmp_path / "r")
    assert (tmp_path / "r" / "checkpoints" / "latest.pt").exists()
    prepare_run_dir(str(tmp_path), "r", False, True, False)
    assert not (tmp_path / "r" / "checkpoints").exists()
