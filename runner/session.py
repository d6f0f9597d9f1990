"""The train-then-test flow that local mode and Ray mode share.

Resume or inference first restores; a resumed run that had already finished says so and
stops; Ctrl-C or SIGTERM (which launch.py turns into KeyboardInterrupt) in any phase saves
a checkpoint before it propagates, so `--resume` continues from that point. So does a
failure (an env past its restart limits, a dead actor) while the learner still answers.
"""

from __future__ import annotations

from typing import Callable


def run_session(cfg, restore: Callable[[], str], train: Callable[[], None],
                test: Callable[[], None], save: Callable[[str], None],
                env_steps: Callable[[], int], stop: Callable[[], None] = lambda: None,
                started: Callable[[], None] = lambda: None) -> bool:
    """Run the phases; returns False when --resume finds the run already finished.

    started: called once the run is restored (or fresh), e.g. to save its configuration: a
    resume that fails to restore must leave the run's saved configuration as it was."""
    phase = restore() if cfg.run.resume or cfg.run.inference else "train"
    started()
    finished = env_steps() >= cfg.run.train_steps
    if cfg.run.resume and phase == "done" and finished:
        print(f"run {cfg.run.run_id!r} already finished ({env_steps()} env steps): raise "
              "--train-steps to train it further, or use --inference to test it again")
        return False
    try:
        if not cfg.run.inference and not finished:
            train()
        test()
    except KeyboardInterrupt:
        if not cfg.run.inference:  # keep what was learned
            stop()
            save(phase_of(cfg, env_steps()))
            print(f"interrupted: checkpoint saved at {env_steps()} env steps; pass --resume "
                  "to continue", flush=True)
        raise
    except Exception:
        if not cfg.run.inference:
            save_after_failure(cfg, stop, save, env_steps)
        raise
    if not cfg.run.inference:
        save("done")
    return True


def phase_of(cfg, env_steps: int) -> str:
    return "test" if env_steps >= cfg.run.train_steps else "train"


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
