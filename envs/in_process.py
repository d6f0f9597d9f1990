"""InProcessEnv: one of our simulations stepped inside the trainer's process, behind the
stock client's `BaseEnv` interface (`--transport in-process`).

Why: over the protocol every env.step() costs about 1-2 ms of CPU (the stock client's gRPC
server, protobuf and per-agent Python, and the env side's encoding) for any number of
agents, ten times a MuJoCo step (bench/env_throughput.py). For the envs whose simulation
is ours to run, the headless Drone and Gymnasium envs, this skips the wire: the same
Simulation objects that the executables serve, built from the same arguments, seeded the
same way, and seen by the trainer as the stock client would show them: the same specs,
DecisionSteps and TerminalSteps (terminal rows and the next first decision in one step,
with the same agent id), zero actions for agents the trainer left out, and a RuntimeError
for NaN or Inf observations or rewards, so that the worker's restart path covers them. A
Unity build runs only over the protocol.
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np

from envs import drone
from envs.unity_player.simulation import Actions, AgentBatch, Simulation
from envs.unity_player.simulation import BehaviorSpec as SimSpec
from mlagents_envs.base_env import (
    ActionSpec,
    ActionTuple,
    BaseEnv,
    BehaviorMapping,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
    TerminalSteps,
)
from mlagents_envs.exception import UnityActionException, UnityEnvironmentException


def open_in_process(env: str, args: list[str], seed: int, num_areas: int) -> InProcessEnv:
    """The env --env names, run by this process with the executable's arguments `args`
    (unknown ones ignored, as the executable does), after its first reset."""
    holds = contextlib.ExitStack()
    if drone.is_bundled(env):
        from envs.drone.__main__ import make_parser, make_simulation
    else:
        from envs.gymnasium.__main__ import make_parser, make_simulation
        from envs.gymnasium.check import working_directory_importable

        _log_mujoco_warnings()
        # a user's module in the working directory may register envs (imported as each
        # area's copy is made)
        holds.enter_context(working_directory_importable())
    with holds:
        parsed, _ = make_parser().parse_known_args(args)
        simulation = make_simulation(parsed)
        try:
            opened = InProcessEnv(simulation, seed if parsed.seed is None else parsed.seed,
                                  num_areas)
            opened.reset()
        except BaseException:
            simulation.close()
            raise
    return opened


@functools.cache
def _log_mujoco_warnings() -> None:
    """Once per process: what the bridge's process does for its lifetime."""
    from envs.gymnasium.check import log_mujoco_warnings

    log_mujoco_warnings()


def mlagents_spec(spec: SimSpec) -> BehaviorSpec:
    """The BehaviorSpec the stock client would build from the env's first message."""
    observations = [
        ObservationSpec(o.shape, tuple(DimensionProperty(d) for d in o.dimension_properties),
                        ObservationType.DEFAULT, o.name) for o in spec.observations]
    return BehaviorSpec(observations, ActionSpec(spec.continuous, tuple(spec.discrete)))


def _finite(data: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(data).all():  # the stock client's guard, as the same exception type
        raise RuntimeError(f"the in-process env sent NaN or Inf {what}")
    return data


class InProcessEnv(BaseEnv):
    """A Simulation behind the stock client's interface; see the module docstring."""

    def __init__(self, simulation: Simulation, seed: int, num_areas: int):
        self._sim = simulation
        self._known = {s.name: s for s in simulation.behaviors}
        self._specs: dict[str, BehaviorSpec] = {}  # as the client: once a behavior reports
        self._state: dict[str, tuple[DecisionSteps, TerminalSteps]] = {}
        self._actions: dict[str, ActionTuple] = {}
        self._started = False
        self._run(lambda: simulation.start(num_areas, seed))

    def reset(self) -> None:
        self._update(self._run(self._sim.reset))
        self._actions.clear()  # actions set before a reset are dropped, as the client does
        self._started = True

    def step(self) -> None:
        if not self._started:  # the stock client resets on a first step too
            return self.reset()
        asked = {}
        for name, (decision, _) in self._state.items():
            action = self._actions.get(name)
            if action is None:  # the trainer said nothing: zeros, as the client sends
                action = self._specs[name].action_spec.empty_action(len(decision))
            asked[name] = Actions(decision.agent_id.astype(np.int64), action.continuous,
                                  action.discrete)
        self._actions.clear()
        self._update(self._run(lambda: self._sim.step(asked)))

    def _run(self, call):
        """A simulation call. Its failure is an env failure, as a crashed env process is
        over the protocol: the worker answers it with a restart (sys.exit() included: it
        would end the env's process there, not the trainer)."""
        try:
            return call()
        except (Exception, SystemExit) as err:
            raise UnityEnvironmentException(
                f"the in-process env failed: {type(err).__name__}: {err}") from err

    def _update(self, batches: dict[str, AgentBatch]) -> None:
        for name, batch in batches.items():
            if name not in self._known:
                raise UnityEnvironmentException(f"the env reported unknown behavior {name!r}")
            if len(batch) and name not in self._specs:
                self._specs[name] = mlagents_spec(self._known[name])
        self._state = {name: split(batches.get(name), spec) for name, spec in self._specs.items()}

    @property
    def behavior_specs(self) -> BehaviorMapping:
        return BehaviorMapping(self._specs)

    def _assert_behavior(self, name: str) -> None:
        if name not in self._specs:
            raise UnityActionException(f"The group {name} does not correspond to an existing "
                                       "agent group in the environment")

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        self._assert_behavior(behavior_name)
        return self._state[behavior_name]

    def set_actions(self, behavior_name: str, action: ActionTuple) -> None:
        self._assert_behavior(behavior_name)
        n = len(self._state[behavior_name][0])
        spec = self._specs[behavior_name].action_spec
        self._actions[behavior_name] = spec._validate_action(action, n, behavior_name)

    def set_action_for_agent(self, behavior_name: str, agent_id: int,
                             action: ActionTuple) -> None:
        self._assert_behavior(behavior_name)
        decision = self._state[behavior_name][0]
        spec = self._specs[behavior_name].action_spec
        action = spec._validate_action(action, 1, behavior_name)
        if agent_id not in decision.agent_id_to_index:
            raise UnityEnvironmentException(f"agent {agent_id} of {behavior_name} did not ask "
                                            "for a decision")
        actions = self._actions.setdefault(behavior_name, spec.empty_action(len(decision)))
        index = decision.agent_id_to_index[agent_id]
        actions.continuous[index] = action.continuous[0]
        actions.discrete[index] = action.discrete[0]

    def close(self) -> None:
        """Close the simulation (safe twice)."""
        sim, self._sim = self._sim, None
        if sim is not None:
            sim.close()

    kill = close  # no process to kill: what kill_env calls before close


def split(batch: AgentBatch | None, spec: BehaviorSpec) -> tuple[DecisionSteps, TerminalSteps]:
    """A behavior's rows as the stock client splits them: not done, done (in order)."""
    if batch is None or not len(batch):
        return DecisionSteps.empty(spec), TerminalSteps.empty(spec)
    decision, terminal = _rows(batch, np.logical_not(batch.done)), _rows(batch, batch.done)
    masks = None  # discrete branches: nothing masked (our simulations send no masks)
    if spec.action_spec.discrete_size:
        masks = [np.zeros((len(decision), b), bool) for b in spec.action_spec.discrete_branches]
    return (DecisionSteps(decision.obs, decision.reward, decision.agent_id, masks,
                          *_no_group(len(decision))),
            TerminalSteps(terminal.obs, terminal.reward, terminal.max_step_reached,
                          terminal.agent_id, *_no_group(len(terminal))))


def _rows(batch: AgentBatch, rows: np.ndarray) -> AgentBatch:
    """The selected rows (copies), in the client's dtypes; NaN and Inf refused as it does."""
    obs = [_finite(o[rows].astype(np.float32, copy=False), "observations") for o in batch.obs]
    return AgentBatch(batch.agent_id[rows].astype(np.int32), obs,
                      _finite(batch.reward[rows].astype(np.float32, copy=False), "rewards"),
                      batch.done[rows], batch.max_step_reached[rows].astype(bool))


def _no_group(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Group ids and group rewards: our simulations have no agent groups."""
    return np.zeros(n, np.int32), np.zeros(n, np.float32)
