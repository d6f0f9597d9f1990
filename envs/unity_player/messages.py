"""The Unity side of the ML-Agents protocol messages (communication version 1.5.0).

Field names and constants are those of mlagents-envs' `communicator_objects` protos, which
are the wire format Unity's C# package speaks.
"""

from __future__ import annotations

import struct
import uuid

import numpy as np

import envs  # noqa: F401  (installs the protobuf fast path before mlagents_envs)
from envs.unity_player.agent_infos import BehaviorEncoder
from envs.unity_player.simulation import Actions, AgentBatch, BehaviorSpec
from mlagents_envs.communicator_objects.brain_parameters_pb2 import BrainParametersProto
from mlagents_envs.communicator_objects.capabilities_pb2 import UnityRLCapabilitiesProto
from mlagents_envs.communicator_objects.unity_message_pb2 import UnityMessageProto

COMMUNICATION_VERSION = "1.5.0"
# The ML-Agents Unity package release whose protocol revision (1.5.0) this env mirrors;
# the client only logs it, but it must parse as a version.
PACKAGE_VERSION = "2.0.1"
STATUS_OK = 200
STATUS_CLOSE = 400  # sent by the client's close()

ENGINE_CONFIGURATION_CHANNEL = uuid.UUID("e951342c-4f7e-11ea-b238-784f4387d1f7")
TIME_SCALE = 2  # EngineConfigurationChannel.ConfigurationType.TIME_SCALE
ENVIRONMENT_PARAMETERS_CHANNEL = uuid.UUID("534c891e-810f-11ea-a9d0-822485860400")
FLOAT_PARAMETER = 0  # EnvironmentParametersChannel.EnvironmentDataTypes.FLOAT


def capabilities() -> UnityRLCapabilitiesProto:
    """What Unity's ML-Agents 2.x package reports for itself."""
    return UnityRLCapabilitiesProto(
        baseRLCapabilities=True,
        concatenatedPngObservations=True,
        compressedChannelMapping=True,
        hybridActions=True,
        trainingAnalytics=True,
        variableLengthObservation=True,
        multiAgentGroups=True,
    )


def initialization_message(env_name: str, log_path: str = "") -> UnityMessageProto:
    """The first message: who we are and which protocol we speak."""
    msg = UnityMessageProto()
    msg.header.status = STATUS_OK
    init = msg.unity_output.rl_initialization_output
    init.name = env_name
    init.communication_version = COMMUNICATION_VERSION
    init.package_version = PACKAGE_VERSION
    init.log_path = log_path
    init.capabilities.CopyFrom(capabilities())
    return msg


def header_only() -> UnityMessageProto:
    """The empty message Unity sends after the handshake, before the first RESET."""
    msg = UnityMessageProto()
    msg.header.status = STATUS_OK
    return msg


def brain_parameters(spec: BehaviorSpec) -> BrainParametersProto:
    """Behavior parameters; sent with the first message that carries the behavior's agents."""
    params = BrainParametersProto(brain_name=spec.name, is_training=True)
    params.action_spec.num_continuous_actions = spec.continuous
    params.action_spec.num_discrete_actions = len(spec.discrete)
    params.action_spec.discrete_branch_sizes.extend(spec.discrete)
    return params


class OutputBuilder:
    """Builds each step's output message for a fixed set of behaviors."""

    def __init__(self, specs: tuple[BehaviorSpec, ...]):
        self.specs = {s.name: s for s in specs}
        self.encoders = {s.name: BehaviorEncoder(s) for s in specs}
        self.unsent = set(self.specs)  # behaviors whose parameters the trainer lacks

    def build(self, batches: dict[str, AgentBatch]) -> UnityMessageProto:
        """One exchange's output: every behavior's agents, in their row order."""
        msg = UnityMessageProto()
        msg.header.status = STATUS_OK
        output = msg.unity_output
        for name, batch in batches.items():
            if name not in self.specs:
                raise KeyError(f"simulation reported unknown behavior {name!r}")
            if not len(batch):
                continue
            output.rl_output.agentInfos[name].MergeFromString(self.encoders[name].encode(batch))
            if name in self.unsent:
                # Unity sends a behavior's parameters with its first agents, never before.
                output.rl_initialization_output.brain_parameters.append(
                    brain_parameters(self.specs[name]))
                self.unsent.discard(name)
        return msg


def read_actions(msg: UnityMessageProto, asked: dict[str, np.ndarray],
                 specs: dict[str, BehaviorSpec]) -> dict[str, Actions]:
    """Each behavior's actions for the agents it was asked about, in that order."""
    agent_actions = msg.unity_input.rl_input.agent_actions
    out = {}
    for name, ids in asked.items():
        spec = specs[name]
        rows = agent_actions[name].value if name in agent_actions else []
        # [:] turns a repeated field into a list at once: numpy reading the containers
        # element by element is several times slower.
        out[name] = Actions(
            ids,
            _action_rows([r.continuous_actions[:] for r in rows], len(ids), spec.continuous,
                         np.float32),
            _action_rows([r.discrete_actions[:] for r in rows], len(ids), len(spec.discrete),
                         np.int32),
        )
    return out


def _action_rows(rows: list, n: int, width: int, dtype) -> np.ndarray:
    """(n, width) actions; rows missing or of another length are padded with zeros."""
    if not width:
        return np.zeros((n, 0), dtype=dtype)
    if len(rows) == n and n:
        try:
            actions = np.array(rows, dtype=dtype)
            if actions.shape == (n, width):
                return actions
        except ValueError:  # ragged rows: take the slow path
            pass
    actions = np.zeros((n, width), dtype=dtype)
    for i, row in enumerate(rows[:n]):
        row = row[:width]
        actions[i, :len(row)] = row
    return actions


def side_channel_messages(data: bytes) -> list[tuple[uuid.UUID, bytes]]:
    """Split `[16-byte uuid (bytes_le)][int32 len][payload]...` into (channel, payload)."""
    messages, offset = [], 0
    while offset + 20 <= len(data):
        channel = uuid.UUID(bytes_le=bytes(data[offset : offset + 16]))
        (length,) = struct.unpack_from("<i", data, offset + 16)
        offset += 20
        messages.append((channel, bytes(data[offset : offset + length])))
        offset += length
    return messages


def float_parameter(payload: bytes) -> tuple[str, float] | None:
    """(name, value) of an EnvironmentParametersChannel float message, None for others
    (samplers): `[int32 len][ascii name][int32 kind][float32 value]`."""
    if len(payload) < 4:
        return None
    (length,) = struct.unpack_from("<i", payload, 0)
    if len(payload) != 4 + length + 8:
        return None
    kind, value = struct.unpack_from("<if", payload, 4 + length)
    return (payload[4:4 + length].decode("ascii"), value) if kind == FLOAT_PARAMETER else None


def engine_time_scale(payload: bytes) -> float | None:
    """The time scale an EngineConfigurationChannel message sets, or None for others."""
    if len(payload) >= 8:
        (kind,) = struct.unpack_from("<i", payload, 0)
        if kind == TIME_SCALE:
            return struct.unpack_from("<f", payload, 4)[0]
    return None
