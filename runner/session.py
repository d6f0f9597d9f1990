"""The train-then-test flow that local mode and Ray mode share.

Resume or inference first restores; a resumed run that had already finished says so and
stops; Ctrl-C or SIGTERM (which launch.py turns into KeyboardInterrupt) in any phase saves
a checkpoint before it propagates, so `--resume` continues from that point. So does a
failure (an env past its restart limits, a dead actor) while the learner still answers.
Training that diverged (the learner refused to publish or save non-finite weights) saves
nothing: its one line says to --resume from the last good checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Callable, ContextManager

from learner.checkpoint import load_checkpoint
from learner.learner import TrainingDiverged


def run_session(cfg, restore: Callable[[], str], train: Callable[[], None],
                test: Callable[[], None], save: Callable[[str], None],
                env_steps: Callable[[], int], stop: Callable[[], None] = lambda: None,
                started: Callable[[], None] = lambda: None,
                checkpoint: str | None = None,
                initialize: Callable[[], None] = lambda: None,
                testing: Callable[[], ContextManager] = contextlib.nullcontext) -> bool:
    """Run the phases; returns False when --resume finds the run already finished.

    started: called once the run is restored (or fresh), e.g. to save its configuration: a
    resume that fails to restore must leave the run's saved configuration as it was (and
    --inference never changes it: a later --resume continues with the training's).
    checkpoint: the run's checkpoint file, which a divergence's message points at.
    initialize: loads --initialize-from's networks; only a run that starts uses it (a
    resumed one continues from its own checkpoint).
    testing: times the test phase (Metrics.testing), which the training average leaves out."""
    if cfg.run.resume or cfg.run.inference:
        phase = restore()
    else:
        phase = "train"
        if cfg.run.initialize_from is not None:
            initialize()
    finished = env_steps() >= cfg.run.train_steps
    if cfg.run.resume and phase == "done" and finished and summarized(checkpoint, env_steps()):
        # nothing runs: nothing rewritten
        print(already_finished(cfg, env_steps()))
        return False
    if not cfg.run.inference:  # a test of a trained run leaves its configuration as it was
        started()
    try:
        if not cfg.run.inference and not finished:
            train()
        with testing():
            test()
    except BaseException as err:
        on_failure(cfg, err, stop, save, env_steps, checkpoint)
        raise
    if not cfg.run.inference:
        save_finished(save)
    return True


def save_finished(save: Callable[[str], None]) -> None:
    try:
        save("done")
    except KeyboardInterrupt:  # the end of training is on disk: only the test is lost
        print("interrupted while saving the finished run: the checkpoint of the end of "
              "training stays; --resume tests it again", flush=True)
        raise


def already_finished(cfg, env_steps: int) -> str:
    return (f"run {cfg.run.run_id!r} already finished ({env_steps} env steps): raise "
            "--train-steps to train it further, or use --inference to test it again")


def finished_before_start(cfg, checkpoint: str) -> str | None:
    """already_finished's line when --resume's checkpoint says so, read before anything
    starts (Ray, the envs, an events file); None otherwise, or when the checkpoint cannot
    be read (the restore says why, in one line)."""
    from learner.checkpoint import CheckpointError

    if not cfg.run.resume:
        return None
    try:
        payload = load_checkpoint(checkpoint, holds="learner")
    except CheckpointError:
        return None
    if payload.get("phase") != "done" or payload["env_steps"] < cfg.run.train_steps or \
            not summarized(checkpoint, payload["env_steps"]):
        return None
    return already_finished(cfg, payload["env_steps"])


def summarized(checkpoint: str | None, env_steps: int) -> bool:
    """Whether the run's summary.json is that of its finished checkpoint (at `env_steps`). A
    Ctrl-C after the finished run's checkpoint was written (during its ONNX export, the
    kept copies, the summary) left one that said "done" and no summary, or an earlier
    session's: --resume then said "already finished", though the line had said that it
    would test again, and the run's test results were never written."""
    if checkpoint is None:
        return True
    path = os.path.join(os.path.dirname(os.path.dirname(checkpoint)), "summary.json")
    try:
        with open(path, encoding="utf-8") as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and summary.get("env_steps") == env_steps


def on_failure(cfg, err: BaseException, stop, save, env_steps, checkpoint) -> None:
    """What a failed phase leaves: a checkpoint when training stopped for a reason other
    than its own weights (the caller re-raises `err`); raises instead for a divergence."""
    if cfg.run.inference:
        return
    if isinstance(err, KeyboardInterrupt):  # keep what was learned
        try:
            stop()
            save(phase_of(cfg, env_steps()))
        except TrainingDiverged as diverged:  # just before the interrupt
            raise resume_point(diverged, checkpoint) from None
        except KeyboardInterrupt:  # a second Ctrl-C: the user wants out now
            print("interrupted again while saving: the last checkpoint written stays (the "
                  "writes are atomic); pass --resume to continue from it", flush=True)
            raise
        print(f"interrupted: checkpoint saved at {env_steps()} env steps; pass --resume "
              "to continue", flush=True)
    elif isinstance(err, TrainingDiverged):
        # The weights are what diverged: nothing is saved, the last checkpoint stays.
        stop()
        raise resume_point(err, checkpoint) from None
    elif isinstance(err, Exception):
        save_after_failure(cfg, stop, save, env_steps)


def phase_of(cfg, env_steps: int) -> str:
    return "test" if env_steps >= cfg.run.train_steps else "train"


def resume_point(err: TrainingDiverged, checkpoint: str | None) -> TrainingDiverged:
    """`err`, saying where to go on from: the checkpoint on disk (of this session or an
    earlier one), or a fresh start when the run diverged before its first."""
    if checkpoint is None:
        return err
    if not os.path.exists(checkpoint):
        fix = "start the run over with --force (it diverged before its first checkpoint)"
    else:
        steps = load_checkpoint(checkpoint)["env_steps"]
        fix = f"--resume from the last checkpoint (at {steps} env steps)"
    return TrainingDiverged(err.nets, err.learner_steps, fix)


def save_after_failure(cfg, stop, save, env_steps) -> None:
    """An env that kept failing, or an actor that died, must not cost what the learner has
    learned since the last checkpoint: save if the learner still answers. If it does not
    (it is what died), the last checkpoint stays as it is."""
    try:
        stop()
        save(phase_of(cfg, env_steps()))
    except Exception:
        return
    print(f"checkpoint saved at {env_steps()} env steps; --resume continues from it",
          flush=True)
