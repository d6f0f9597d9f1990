"""The run folder: created, reused on --resume, replaced on --force, never anything else."""

import os

import pytest

from runner.errors import RunError
from runner.run_dir import IN_USE, in_use_by, prepare_run_dir, release_run_dir
from tests.helpers import wait_until


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
    release_run_dir(str(tmp_path / "r"), force=False)
    prepare_run_dir(str(tmp_path), "r", False, True, False)
    assert not (tmp_path / "r" / "checkpoints").exists()
    (tmp_path / "r" / "configuration.yaml").write_text("{}\n")  # the new run started
    assert release_run_dir(str(tmp_path / "r"), force=True) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # the old one is gone
    assert not (tmp_path / "r" / IN_USE).exists()


def test_force_keeps_the_old_run_until_the_new_one_starts(tmp_path):
    """--force deleted the old run before the new one's env (or replay) had started: a
    typo in --env cost the whole previous run."""
    (tmp_path / "r" / "checkpoints").mkdir(parents=True)
    (tmp_path / "r" / "checkpoints" / "latest.pt").write_bytes(b"old")
    run_dir = prepare_run_dir(str(tmp_path), "r", False, True, False)
    (tmp_path / "r" / "env_logs").mkdir()  # the failed start's debris; no configuration.yaml
    (tmp_path / "r" / "env_logs" / "Player-0.log").write_text("why it failed")
    note = release_run_dir(run_dir, force=True)
    assert "previous run is back" in note and ".r.failed-start" in note
    assert (tmp_path / "r" / "checkpoints" / "latest.pt").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".r.failed-start", "r"]
    assert (tmp_path / ".r.failed-start" / "env_logs" / "Player-0.log").exists()


def test_an_interrupted_force_gives_the_old_run_back(tmp_path, capsys):
    """A forced start SIGKILLed before it started left the old run hidden as .r.replaced,
    and the next session without --force deleted it with the debris."""
    (tmp_path / "r" / "checkpoints").mkdir(parents=True)
    (tmp_path / "r" / "checkpoints" / "latest.pt").write_bytes(b"old")
    prepare_run_dir(str(tmp_path), "r", False, True, False)  # then killed: no release
    (tmp_path / "r" / IN_USE).write_text("999999999")  # a pid no process has
    with pytest.raises(RunError, match="already exists"):  # it is back, so: --resume
        prepare_run_dir(str(tmp_path), "r", False, False, False)
    assert "is back: an interrupted --force had set it aside" in capsys.readouterr().out
    assert (tmp_path / "r" / "checkpoints" / "latest.pt").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_a_run_in_use_or_a_linked_one_is_not_touched(tmp_path):
    """Two processes on one run folder (a --force, a --resume, or a debris clean-up of a
    run whose envs are still starting) would destroy each other's files."""
    import subprocess
    import sys

    (tmp_path / "r" / "env_logs").mkdir(parents=True)  # looks like debris, but is starting
    run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    other = subprocess.Popen(["sleep", "60"])  # what a dead run's pid may have become
    try:
        assert wait_until(lambda: b"sleep" in open(f"/proc/{other.pid}/cmdline", "rb").read(),
                          10)  # exec'd: no longer a copy of this Python
        (tmp_path / "r" / IN_USE).write_text(str(run.pid))
        with pytest.raises(RunError, match=r"in use by another drone-ddpg process \(pid.*if "
                                           r"none is running, remove .*\.in-use\)"):
            prepare_run_dir(str(tmp_path), "r", False, True, False)
        assert (tmp_path / "r" / "env_logs").is_dir()
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / IN_USE).write_text(str(other.pid))
        assert in_use_by(str(tmp_path / "s")) is None  # it blocked the run, for good
    finally:
        run.kill()
        other.kill()
    target = tmp_path / "elsewhere"
    (target / "checkpoints").mkdir(parents=True)
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(RunError, match="is a symbolic link: --force replaces only plain"):
        prepare_run_dir(str(tmp_path), "link", False, True, False)
    assert (tmp_path / "link").is_symlink() and (target / "checkpoints").is_dir()


def test_a_failed_start_leaves_nothing_that_blocks_the_next(tmp_path, monkeypatch):
    """A start that failed left env_logs/, and the corrected rerun was refused as 'already
    exists'; --results-dir . was refused as a bad --run-id; a long id blamed the folder."""
    (tmp_path / "r" / "env_logs").mkdir(parents=True)
    prepare_run_dir(str(tmp_path), "r", resume=False, force=False, inference=False)
    (tmp_path / "s" / "env_logs").mkdir(parents=True)
    (tmp_path / "s" / "notes.txt").write_text("not ours")  # not debris: still refused
    with pytest.raises(RunError, match="already exists"):
        prepare_run_dir(str(tmp_path), "s", resume=False, force=False, inference=False)
    monkeypatch.chdir(tmp_path)
    assert prepare_run_dir(".", "t", False, False, False) == os.path.join(".", "t")
    with pytest.raises(RunError, match="File name too long.*pass a shorter --run-id"):
        prepare_run_dir(".", "x" * 300, False, False, False)


def test_the_last_checkpoints_are_kept_with_their_policies(tmp_path):
    from runner.run_dir import checkpoint_path, keep_checkpoint

    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    onnx = run_dir / "My Behavior.onnx"
    latest = checkpoint_path(str(run_dir))
    for steps in (400, 800, 1200, 1200, 1600):  # the end of training and of the run: 1200
        with open(latest, "w") as f:
            f.write(f"checkpoint {steps}")
        os.chmod(latest, 0o600)
        onnx.write_text(f"policy {steps}")
        keep_checkpoint(str(run_dir), str(onnx), steps, keep=3)
    kept = run_dir / "checkpoints"
    assert sorted(os.listdir(kept)) == sorted(
        ["latest.pt"] + [f"checkpoint-{s}.pt" for s in (800, 1200, 1600)]
        + [f"My Behavior-{s}.onnx" for s in (800, 1200, 1600)])
    assert (kept / "checkpoint-800.pt").read_text() == "checkpoint 800"
    assert (kept / "My Behavior-1200.onnx").read_text() == "policy 1200"
    assert os.stat(kept / "checkpoint-1600.pt").st_mode & 0o777 == 0o600  # as latest.pt
    keep_checkpoint(str(run_dir), str(onnx), 2000, keep=0)  # --keep-checkpoints 0: none
    assert not (kept / "checkpoint-2000.pt").exists()


def test_a_forced_start_that_cannot_write_puts_the_old_run_back(tmp_path, monkeypatch):
    """A full disk at a --force start left the old run hidden as .r.replaced beside an
    empty r/ until some later start brought it back."""
    import errno

    from runner import run_dir

    (tmp_path / "r" / "checkpoints").mkdir(parents=True)
    (tmp_path / "r" / "checkpoints" / "latest.pt").write_bytes(b"old")
    real_open = open

    def full_disk(path, *args, **kwargs):
        if str(path).endswith(IN_USE):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(run_dir, "open", full_disk, raising=False)
    with pytest.raises(RunError, match="No space left on device"):
        prepare_run_dir(str(tmp_path), "r", False, True, False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
    assert (tmp_path / "r" / "checkpoints" / "latest.pt").read_bytes() == b"old"


def test_two_processes_started_at_once_get_the_run_one_at_a_time(tmp_path):
    """Both passed the in-use check before either wrote its mark, and trained in one folder
    (two event files, each other's checkpoints). Each here waits a second between its
    check and its mark: the second must find the first's."""
    import subprocess
    import sys

    claim = ("import sys, time\n"
             "import runner.run_dir as rd\n"
             "from runner.errors import RunError\n"
             "rd.recover_replaced = lambda path: time.sleep(1.0)  # after the check\n"
             "try:\n"
             f"    rd.prepare_run_dir({str(tmp_path)!r}, 'r', False, False, False)\n"
             "except RunError as err:\n"
             "    print(err)\n"
             "    sys.exit(2)\n"
             "time.sleep(2.0)  # still running when the other one checks\n")
    procs = [subprocess.Popen([sys.executable, "-c", claim], stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.wait(timeout=60), p.stdout.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    assert "is in use by another drone-ddpg process" in max(results)[1]


def test_a_run_without_latest_pt_but_kept_checkpoints_is_told_to_use_one(tmp_path):
    """The advice was --force, which deletes the kept checkpoints with the run."""
    folder = tmp_path / "r" / "checkpoints"
    folder.mkdir(parents=True)
    for steps in (900, 1200, 300):
        (folder / f"checkpoint-{steps}.pt").write_bytes(b"")
    with pytest.raises(RunError) as refused:
        prepare_run_dir(str(tmp_path), "r", True, False, False)
    message = str(refused.value)
    assert f"keeps {folder / 'checkpoint-1200.pt'}: copy it to {folder / 'latest.pt'}" in message
    assert "--force" not in message


def test_what_a_killed_write_left_is_removed_at_the_next_start(tmp_path):
    """A SIGKILL mid-checkpoint left .latest.pt.<random>.tmp (as large as a checkpoint, or
    a replay) in the run folder for good."""
    folder = tmp_path / "r" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "latest.pt").write_bytes(b"x")
    partial = [folder / ".latest.pt.x6te7t5u.tmp", folder / ".replay.pt.ab_12.tmp",
               tmp_path / "r" / ".summary.json.q1w2.tmp"]
    for path in partial:
        path.write_bytes(b"half")
    path = prepare_run_dir(str(tmp_path), "r", True, False, False)
    assert not any(p.exists() for p in partial)
    assert (folder / "latest.pt").exists()
    release_run_dir(path, False)


@pytest.mark.parametrize("text", ["null", "[]", "5"])
def test_inference_over_a_summary_that_is_not_an_object_keeps_its_test_results(tmp_path, text):
    """--inference merges its test results into summary.json: an edited file that is not
    a JSON object must not end the session in a TypeError after the whole test phase."""
    import json

    from runner.run_dir import write_summary

    (tmp_path / "summary.json").write_text(text)
    written = write_summary(str(tmp_path), {"test": {"episodes": 3}}, inference=True)
    assert written == {"test": {"episodes": 3}}
    assert json.loads((tmp_path / "summary.json").read_text()) == written


def test_a_folder_in_place_of_latest_pt_is_named(tmp_path):
    """A folder named latest.pt read as 'no checkpoint: --force' (which deletes the run)
    or 'copy checkpoint-<N>.pt to it' (which copies into the folder)."""
    folder = tmp_path / "r" / "checkpoints"
    (folder / "latest.pt").mkdir(parents=True)
    (folder / "checkpoint-300.pt").write_bytes(b"")
    with pytest.raises(RunError) as refused:
        prepare_run_dir(str(tmp_path), "r", True, False, False)
    assert str(refused.value) == (f"{folder / 'latest.pt'} is a folder, not a checkpoint: "
                                  "move it away, then --resume again")
