"""A Unity player's half of the ML-Agents protocol: the gRPC client that serves a Simulation.

As in Unity, the Python trainer is the gRPC server and this process calls its
`UnityToExternalProto/Exchange` again and again: each call carries our output and returns
the trainer's next input. The sequence is the one the stock client expects:
initialization output -> initialization input (seed, num_areas); an empty message ->
the first RESET; then one output per RESET or STEP until the client closes (status 400),
sends QUIT, or goes away (a gRPC error). Any of those ends the process at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
import numpy as np

import envs  # noqa: F401  (protobuf fast path)
from envs.unity_player import messages
from envs.unity_player.simulation import AgentBatch, Simulation
from mlagents_envs.communicator_objects.command_pb2 import QUIT, RESET
from mlagents_envs.communicator_objects.unity_message_pb2 import UnityMessageProto
from mlagents_envs.communicator_objects.unity_to_external_pb2_grpc import (
    UnityToExternalProtoStub,
)

log = logging.getLogger("unity_player")

# No HTTP proxy for a loopback connection, whatever the environment says.
_CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0)]


class OutputTooLargeError(RuntimeError):
    """The trainer refused a message over its gRPC server's size limit."""


@dataclass
class ServerConfig:
    """How one player process connects."""

    port: int = 5004  # --mlagents-port: the trainer's gRPC server (5004 = editor mode)
    seed: int | None = None  # --seed: overrides the seed the trainer sends
    connect_timeout: float = 300.0  # seconds to wait for the trainer's server to appear
    log_path: str = ""


class PlayerServer:
    """Speaks the protocol for one process and one Simulation."""

    def __init__(self, simulation: Simulation, config: ServerConfig):
        self.sim = simulation
        self.config = config
        self.specs = {s.name: s for s in simulation.behaviors}
        self.output = messages.OutputBuilder(simulation.behaviors)
        # Per behavior: the agents asked for a decision in our last message, in order.
        self.asked: dict[str, np.ndarray] = {}
        self.time_scale = 1.0
        self.steps = 0

    def run(self) -> str:
        """Serve until the trainer closes or disappears; returns why it stopped."""
        address = f"localhost:{self.config.port}"
        output = None
        with grpc.insecure_channel(address, options=_CHANNEL_OPTIONS) as channel:
            exchange = UnityToExternalProtoStub(channel).Exchange
            try:
                reply = exchange(
                    messages.initialization_message(self.sim.name, self.config.log_path),
                    wait_for_ready=True,
                    timeout=self.config.connect_timeout,
                )
                if reply.header.status != messages.STATUS_OK:
                    return "closed by the trainer"
                # The empty message first: the client waits for it without a time limit,
                # so a scene that fails while it builds (or is killed) would hang it. From
                # here its waits poll our process, and a failure is an env that exited.
                init, reply = reply, exchange(messages.header_only())
                self._initialize(init)
                while True:
                    output = self.handle(reply)
                    if output is None:
                        return "closed by the trainer"
                    reply = exchange(output)
            except grpc.RpcError as err:
                if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and output is not None:
                    raise OutputTooLargeError(
                        f"our message of {output.ByteSize() / 2**20:.1f} MiB is over the "
                        "trainer's gRPC limit (4 MiB): lower --num-areas or the "
                        "observation size") from None
                return f"trainer unreachable ({err.code().name})"

    def _initialize(self, reply: UnityMessageProto) -> None:
        init = reply.unity_input.rl_initialization_input
        seed = self.config.seed if self.config.seed is not None else init.seed
        num_areas = max(1, init.num_areas)
        log.info("connected: client %s, communication %s, num_areas=%d, seed=%d",
                 init.package_version, init.communication_version, num_areas, seed)
        self.sim.start(num_areas, seed)

    def handle(self, reply: UnityMessageProto) -> UnityMessageProto | None:
        """The output for one trainer input, or None when the trainer asks us to stop."""
        if reply.header.status != messages.STATUS_OK:
            return None
        rl_input = reply.unity_input.rl_input
        self._side_channels(rl_input.side_channel)
        if rl_input.command == QUIT:
            return None
        if rl_input.command == RESET:
            return self._output(self.sim.reset())
        actions = messages.read_actions(reply, self.asked, self.specs)
        self.steps += 1
        return self._output(self.sim.step(actions))

    def _side_channels(self, data: bytes) -> None:
        # Other channels (analytics, ...) are ignored, and we never write to a channel:
        # the client logs a handler per unregistered message.
        for channel, payload in messages.side_channel_messages(data):
            if channel == messages.ENGINE_CONFIGURATION_CHANNEL:
                scale = messages.engine_time_scale(payload)
                if scale is not None:
                    self.time_scale = scale
                    log.info("time_scale set to %g (headless: runs as fast as it can)", scale)
            elif channel == messages.ENVIRONMENT_PARAMETERS_CHANNEL:
                param = messages.float_parameter(payload)
                if param is not None:  # logged so a run can show what reached the env
                    log.info("environment parameter %s = %g (this env reads none)", *param)

    def _output(self, batches: dict[str, AgentBatch]) -> UnityMessageProto:
        # The next input's actions are for these agents: the ones not done, in order.
        self.asked = {name: b.agent_id[~b.done] for name, b in batches.items()
                      if len(b) and not b.done.all()}
        return self.output.build(batches)
