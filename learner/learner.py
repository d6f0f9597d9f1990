"""The plain (Ray-free) learner: owns networks, optimizers, device and counters."""

import numpy as np
import torch

from learner import ddpg, fast
from learner.config import LearnerConfig
from learner.checkpoint import INITIALIZING, RESUMING, CheckpointError, check_compatible


class TrainingDiverged(ValueError):
    """The networks hold NaN or Inf (updates blew up: learning rates too high, usually).

    A ValueError, so that it ends a run with its one line as bad input does (launch.py, and
    Ray's task errors via runner.ray_errors.task_cause). `fix` is the second half of that
    line: the runner, which knows the last checkpoint, says where to resume from."""

    def __init__(self, nets: str, learner_steps: int,
                 fix: str = "--resume from the last checkpoint"):
        super().__init__(nets, learner_steps, fix)  # all of them: Ray pickles it by its args
        self.nets, self.learner_steps, self.fix = nets, learner_steps, fix

    def __str__(self) -> str:
        return (f"training diverged (non-finite {self.nets} weights at learner step "
                f"{self.learner_steps}); lower --actor-lr/--critic-lr and {self.fix}")


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda but no CUDA device is available; use --device auto or cpu")
    return torch.device(name)


class Learner:
    """Owns the networks, optimizers, device, learner_steps and policy_version."""

    def __init__(self, obs_size: int, action_size: int, cfg: LearnerConfig, seed: int = 0):
        # Both are process-wide: the learner is meant to own its process (or Ray actor).
        torch.manual_seed(seed)
        if cfg.torch_threads > 0:
            torch.set_num_threads(cfg.torch_threads)
        self.cfg = cfg
        self.obs_size = obs_size
        self.action_size = action_size
        self.device = resolve_device(cfg.device)
        self.state = ddpg.make_state(obs_size, action_size, cfg, self.device)
        self.update_fn = fast.make_update_fn(self.state, compile=cfg.compile,
                                             cudagraphs=cfg.cudagraphs)
        self.learner_steps = 0
        self.policy_version = 0
        # True while the networks or the normalizer hold something no worker was sent: what
        # a phase's end publishes, so that the policy tested is the policy saved.
        self.unpublished = True

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """One DDPG step on a numpy batch (see ddpg.update); returns device-tensor metrics.

        Keys outside ddpg.BATCH_KEYS (e.g. the policy version of each transition) are ignored.
        """
        # torch.tensor copies: replay may hand out read-only views of its storage.
        tensors = {
            key: torch.tensor(batch[key], dtype=torch.float32, device=self.device)
            for key in ddpg.BATCH_KEYS
            if key in batch
        }
        return self.update_tensors(tensors)

    def update_tensors(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One update on tensors already on the device (the device-replay path).

        The metrics are this update's own tensors, safe to keep across calls: an update fn
        may hand back the same output tensors every time (a CUDA graph's static outputs),
        so they are copied here, where every caller passes."""
        # TD3's delayed updates: the actor and the targets move on every d-th update only.
        update_actor = (self.learner_steps + 1) % self.cfg.policy_delay == 0
        metrics = self.update_fn({k: batch[k] for k in ddpg.BATCH_KEYS if k in batch},
                                 update_actor)
        self.learner_steps += 1
        self.unpublished = True
        return {key: value.clone() for key, value in metrics.items()}

    def update_batches(self, batches: list[dict[str, np.ndarray]]
                       ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One update per batch, in order: (the last update's metrics, every row's |TD|
        concatenated in the batches' order), for priorities of a stacked sample."""
        metrics, td = {}, []
        for batch in batches:
            metrics = self.update(batch)
            td.append(metrics["td_abs"])
        return metrics, torch.cat(td)

    def actor_weights(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the actor's state_dict, safe to ship to env workers."""
        return _cpu_copy(self.state.actor)

    def publish_weights(self, critic: bool = False, new: bool = True
                        ) -> tuple[dict[str, dict], int]:
        """Bump policy_version; return ({"actor": weights[, "critic": weights]
        [, "normalizer": its statistics]}, version).

        critic: include the critic, for workers that compute initial replay priorities.
        new=False: the same policy again (restored from a checkpoint), under its version.
        TrainingDiverged, and nothing published, when the networks hold NaN or Inf."""
        self.check_finite()  # no worker may act on them (an env refuses NaN, and blames itself)
        self.policy_version += int(new)
        self.unpublished = False
        weights = {"actor": self.actor_weights()}
        if critic:  # with twin critics the first one: the workers' estimate is a first guess
            critic_net = self.state.critic
            weights["critic"] = _cpu_copy(getattr(critic_net, "q1", critic_net))
        if self.state.normalizer is not None:
            weights["normalizer"] = _cpu_copy(self.state.normalizer)
        return weights, self.policy_version

    def merge_obs_stats(self, report: dict | None) -> None:
        """Fold a worker's observation statistics (`ObsStats.take()`) into the normalizer."""
        if report is not None and self.state.normalizer is not None:
            self.state.normalizer.merge(report)
            self.unpublished = True

    def check_finite(self, targets: bool = False) -> None:
        """Raise TrainingDiverged when the actor or the critic (and, with `targets`, their
        targets) hold NaN or Inf. A device sync, which is why it runs where the
        weights leave the learner (publish, save), not after every update."""
        s = self.state
        nets = {"actor": s.actor, "critic": s.critic}
        if targets:
            nets |= {"actor_target": s.actor_target, "critic_target": s.critic_target}
        with torch.no_grad():
            # A sum is finite only if every term is (NaN and Inf propagate), and summing
            # costs a tenth of an isfinite pass (local --overlap-envs publishes every
            # update). Only a non-finite sum (or one that overflowed) pays for the exact check.
            sums = torch.stack([p.sum() for net in nets.values() for p in net.parameters()])
            if bool(sums.sum().isfinite()):
                return
            bad = [name for name, net in nets.items()
                   if not torch.stack([p.isfinite().all() for p in net.parameters()]).all()]
        if bad:
            raise TrainingDiverged("/".join(bad), self.learner_steps)

    def state_dict(self) -> dict:
        """Everything needed to resume bit-for-bit; only weights_only-loadable types.
        TrainingDiverged when the networks hold NaN or Inf: such a checkpoint must never
        replace the last good one."""
        self.check_finite(targets=True)
        s = self.state
        return {
            "actor": s.actor.state_dict(),
            "critic": s.critic.state_dict(),
            "actor_target": s.actor_target.state_dict(),
            "critic_target": s.critic_target.state_dict(),
            "actor_opt": s.actor_opt.state_dict(),
            "critic_opt": s.critic_opt.state_dict(),
            "learner_steps": self.learner_steps,
            "policy_version": self.policy_version,
            "torch_rng_state": torch.get_rng_state(),
            "cuda_rng_state": torch.cuda.get_rng_state(self.device)
            if self.device.type == "cuda"
            else None,
            "obs_size": self.obs_size,
            "action_size": self.action_size,
            "hidden_size": self.cfg.hidden_size,
            "twin_critics": self.cfg.twin_critics,
            "critic_action_layer": self.cfg.critic_action_layer,
            "normalizer": None if s.normalizer is None else s.normalizer.state_dict(),
        }

    def load_state_dict(self, d: dict) -> None:
        """Restore a state_dict() (e.g. from load_checkpoint); CheckpointError, one line, on a
        size or option mismatch, or on state that does not fit (missing or extra keys)."""
        self._fit(self._load, d)

    def initialize_from(self, d: dict) -> None:
        """Another run's networks, targets and normalizer (a state_dict()) as this run's
        start, as mlagents-learn's --initialize-from: the optimizers and the counters stay
        fresh. CheckpointError, one line, when they do not fit."""
        self._fit(self._load_networks, d, INITIALIZING)

    def _fit(self, load, d: dict, otherwise: str = RESUMING) -> None:
        check_compatible(d, self.obs_size, self.action_size, self.cfg, otherwise)
        try:
            load(d)
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise CheckpointError(f"the checkpoint's learner state does not fit this learner "
                                  f"({type(err).__name__}: {first}); use an earlier checkpoint "
                                  f"or {otherwise}") from None

    def _load_networks(self, d: dict) -> None:
        # Module.load_state_dict copies in place: a compiled or captured update keeps
        # pointing at these tensors.
        s = self.state
        s.actor.load_state_dict(d["actor"])
        s.critic.load_state_dict(d["critic"])
        s.actor_target.load_state_dict(d["actor_target"])
        s.critic_target.load_state_dict(d["critic_target"])
        if s.normalizer is not None:
            s.normalizer.load_state_dict(d["normalizer"])

    def _load(self, d: dict) -> None:
        s = self.state
        self._load_networks(d)
        # Optimizer.load_state_dict moves its moments onto the parameters' device.
        s.actor_opt.load_state_dict(d["actor_opt"])
        s.critic_opt.load_state_dict(d["critic_opt"])
        # The saved optimizer state carries the saved learning rates; a resume's flags
        # (--actor-lr/--critic-lr, recorded in its configuration.yaml) win, as elsewhere.
        for opt, lr in ((s.actor_opt, self.cfg.actor_lr), (s.critic_opt, self.cfg.critic_lr)):
            for group in opt.param_groups:
                group["lr"] = lr
        self.learner_steps = int(d["learner_steps"])
        self.policy_version = int(d["policy_version"])
        # set_rng_state wants a CPU ByteTensor, whatever map_location the load used.
        torch.set_rng_state(d["torch_rng_state"].cpu())
        if d.get("cuda_rng_state") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(d["cuda_rng_state"].cpu(), self.device)
        # Loading optimizer state replaces the tensors a compiled or captured update holds.
        self.update_fn = fast.make_update_fn(self.state, compile=self.cfg.compile,
                                             cudagraphs=self.cfg.cudagraphs)


def _cpu_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    # copy=True: on a CPU learner .to("cpu") alone would alias the live parameters.
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
