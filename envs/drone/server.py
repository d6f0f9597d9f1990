"""The headless Drone as a Unity player: the gRPC client of the ML-Agents protocol.

As in Unity, the Python trainer is the gRPC server and this process calls its
`UnityToExternalProto/Exchange` again and again: each call carries our output and returns
the trainer's next input. The sequence is the one the stock client expects:
initialization output -> initialization input (seed, num_areas); an empty message ->
the first RESET; then one output per RESET or STEP until the client closes (status 400)
or goes away (a gRPC error). Either ends the process at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
import numpy as np

import envs  # noqa: F401  (protobuf fast path)
from envs.drone import messages
from envs.drone.physics import ACTION_SIZE, DronePhysics
from mlagents_envs.communicator_objects.command_pb2 import QUIT, RESET
from mlagents_envs.communicator_objects.unity_message_pb2 import UnityMessageProto
from mlagents_envs.communicator_objects.unity_to_external_pb2_grpc import (
    UnityToExternalProtoStub,
)

log = logging.getLogger("drone")

# No HTTP proxy for a loopback connection, whatever the environment says.
_CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0)]


@dataclass
class ServerConfig:
    """How one headless Drone process runs."""

    port: int = 5004  # --mlagents-port: the trainer's gRPC server (5004 = editor mode)
    seed: int | None = None  # --seed: overrides the seed the trainer sends
    max_step: int = 0  # --max-step: episode step limit, 0 = none (as in the original)
    connect_timeout: float = 300.0  # seconds to wait for the trainer's server to appear
    log_path: str = ""
    nan_at_step: int = 0  # fault injection for tests: a NaN observation at this step


class DroneServer:
    """Speaks the protocol for one process with `num_areas` drones."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.physics: DronePhysics | None = None
        self.brain_sent = False
        self.episodes = 0
        self.successes = 0
        self.env_steps = 0
        self.time_scale = 1.0

    def run(self) -> str:
        """Serve until the trainer closes or disappears; returns why it stopped."""
        address = f"localhost:{self.config.port}"
        with grpc.insecure_channel(address, options=_CHANNEL_OPTIONS) as channel:
            exchange = UnityToExternalProtoStub(channel).Exchange
            try:
                reply = exchange(
                    messages.initialization_message(self.config.log_path),
                    wait_for_ready=True,
                    timeout=self.config.connect_timeout,
                )
                self._initialize(reply)
                reply = exchange(_header_only())
                while True:
                    output = self.handle(reply)
                    if output is None:
                        return "closed by the trainer"
                    reply = exchange(output)
            except grpc.RpcError as err:
                return f"trainer unreachable ({err.code().name})"

    def _initialize(self, reply: UnityMessageProto) -> None:
        init = reply.unity_input.rl_initialization_input
        seed = self.config.seed if self.config.seed is not None else init.seed
        num_areas = max(1, init.num_areas)
        self.physics = DronePhysics(num_areas, seed, self.config.max_step)
        log.info(
            "connected: client %s, communication %s, num_areas=%d, seed=%d, max_step=%d",
            init.package_version, init.communication_version, num_areas, seed,
            self.config.max_step,
        )

    def handle(self, reply: UnityMessageProto) -> UnityMessageProto | None:
        """The output for one trainer input, or None when the trainer asks us to stop."""
        if reply.header.status != messages.STATUS_OK:
            return None
        rl_input = reply.unity_input.rl_input
        self._side_channels(rl_input.side_channel)
        if rl_input.command == QUIT:
            return None
        if rl_input.command == RESET:
            return self._reset()
        return self._step(reply)

    def _side_channels(self, data: bytes) -> None:
        # Unknown channels (analytics, environment parameters, ...) are ignored, and we
        # never write to a channel: the client logs a handler per unregistered message.
        for channel, payload in messages.side_channel_messages(data):
            if channel == messages.ENGINE_CONFIGURATION_CHANNEL:
                scale = messages.engine_time_scale(payload)
                if scale is not None:
                    self.time_scale = scale
                    log.info("time_scale set to %g (headless: runs as fast as it can)", scale)

    def _reset(self) -> UnityMessageProto:
        self.physics.reset()
        n = self.physics.num_areas
        no = np.zeros(n, dtype=bool)
        return self._message(self.physics.observe(), np.zeros(n, np.float32), no, no)

    def _step(self, reply: UnityMessageProto) -> UnityMessageProto:
        physics = self.physics
        n = physics.num_areas
        action = messages.continuous_actions(reply, n, ACTION_SIZE)
        result = physics.step(action)
        self.env_steps += 1
        done = result.terminated | result.truncated
        if not done.any():
            no = np.zeros(n, dtype=bool)
            return self._message(self._observe(), result.reward, no, no)
        # Unity sends an agent's terminal step and its next episode's first decision in
        # one message, with the same agent id; the new decision carries reward 0.
        ended = np.flatnonzero(done)
        terminal_obs = physics.observe()[ended]
        self.episodes += len(ended)
        self.successes += int(result.reached_goal.sum())
        physics.reset(done)
        reward = np.where(done, 0.0, result.reward).astype(np.float32)
        obs = np.concatenate([terminal_obs, self._observe()])
        rewards = np.concatenate([result.reward[ended], reward])
        ids = np.concatenate([ended, np.arange(n)])
        dones = np.concatenate([np.ones(len(ended), bool), np.zeros(n, bool)])
        interrupted = np.concatenate([result.truncated[ended], np.zeros(n, bool)])
        return messages.step_message(obs, rewards, ids, dones, interrupted)

    def _observe(self) -> np.ndarray:
        obs = self.physics.observe()
        if self.config.nan_at_step and self.env_steps == self.config.nan_at_step:
            obs[0, 0] = np.nan  # what a broken Unity scene sends; the client must refuse it
        return obs

    def _message(self, obs, reward, done, max_step_reached) -> UnityMessageProto:
        brain = None
        if not self.brain_sent:
            # Behavior parameters travel with the first message that carries agents.
            brain = messages.brain_parameters(ACTION_SIZE)
            self.brain_sent = True
        ids = np.arange(len(obs))
        return messages.step_message(obs, reward, ids, done, max_step_reached, brain)


def _header_only() -> UnityMessageProto:
    msg = UnityMessageProto()
    msg.header.status = messages.STATUS_OK
    return msg
