"""The Unity side of the ML-Agents protocol messages (communication version 1.5.0).

Field names and constants are those of mlagents-envs' `communicator_objects` protos, which
are the wire format Unity's C# package speaks. Only what the Drone needs is built: one
behavior, vector observations, continuous actions.
"""

from __future__ import annotations

import struct
import uuid

import numpy as np

import envs  # noqa: F401  (installs the protobuf fast path before mlagents_envs)
from mlagents_envs.communicator_objects.agent_info_pb2 import AgentInfoProto
from mlagents_envs.communicator_objects.brain_parameters_pb2 import BrainParametersProto
from mlagents_envs.communicator_objects.capabilities_pb2 import UnityRLCapabilitiesProto
from mlagents_envs.communicator_objects.unity_message_pb2 import UnityMessageProto
from mlagents_envs.communicator_objects.unity_output_pb2 import UnityOutputProto

# Unity appends the team id to the behavior name it sends over the wire.
BEHAVIOR = "My Behavior?team=0"
COMMUNICATION_VERSION = "1.5.0"
# The ML-Agents Unity package release whose protocol revision (1.5.0) this env mirrors;
# the client only logs it, but it must parse as a version.
PACKAGE_VERSION = "2.0.1"
ENV_NAME = "Drone"
STATUS_OK = 200
STATUS_CLOSE = 400  # sent by the client's close()

ENGINE_CONFIGURATION_CHANNEL = uuid.UUID("e951342c-4f7e-11ea-b238-784f4387d1f7")
TIME_SCALE = 2  # EngineConfigurationChannel.ConfigurationType.TIME_SCALE
VECTOR_SENSOR_NAME = "VectorSensor_size{}"
DIMENSION_PROPERTY_NONE = 1  # ML-Agents DimensionProperty.None (vector sensors)


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


def initialization_message(log_path: str = "") -> UnityMessageProto:
    """The first message: who we are and which protocol we speak."""
    msg = UnityMessageProto()
    msg.header.status = STATUS_OK
    init = msg.unity_output.rl_initialization_output
    init.name = ENV_NAME
    init.communication_version = COMMUNICATION_VERSION
    init.package_version = PACKAGE_VERSION
    init.log_path = log_path
    init.capabilities.CopyFrom(capabilities())
    return msg


def brain_parameters(num_actions: int) -> BrainParametersProto:
    """Behavior parameters; sent with the first message that carries agents."""
    params = BrainParametersProto(brain_name=BEHAVIOR, is_training=True)
    params.action_spec.num_continuous_actions = num_actions
    return params


def step_message(
    obs: np.ndarray,
    reward: np.ndarray,
    agent_ids: np.ndarray,
    done: np.ndarray,
    max_step_reached: np.ndarray,
    brain: BrainParametersProto | None = None,
) -> UnityMessageProto:
    """One exchange's output: an AgentInfoProto per row, in row order."""
    msg = UnityMessageProto()
    msg.header.status = STATUS_OK
    output: UnityOutputProto = msg.unity_output
    if brain is not None:
        output.rl_initialization_output.brain_parameters.append(brain)
    infos = output.rl_output.agentInfos[BEHAVIOR].value
    name = VECTOR_SENSOR_NAME.format(obs.shape[1])
    for row, r, agent_id, d, m in zip(
        obs.tolist(), reward.tolist(), agent_ids.tolist(), done.tolist(), max_step_reached.tolist()
    ):
        info: AgentInfoProto = infos.add(reward=r, done=d, max_step_reached=m, id=agent_id)
        ob = info.observations.add(shape=[len(row)], name=name)
        ob.dimension_properties.append(DIMENSION_PROPERTY_NONE)
        ob.float_data.data.extend(row)
    return msg


def continuous_actions(msg: UnityMessageProto, num_agents: int, num_actions: int) -> np.ndarray:
    """The (num_agents, num_actions) actions of a STEP input; missing rows are zeros."""
    actions = np.zeros((num_agents, num_actions), dtype=np.float64)
    agent_actions = msg.unity_input.rl_input.agent_actions
    if BEHAVIOR in agent_actions:
        rows = [list(a.continuous_actions) for a in agent_actions[BEHAVIOR].value]
        for i, row in enumerate(rows[:num_agents]):
            n = min(len(row), num_actions)
            actions[i, :n] = row[:n]
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


def engine_time_scale(payload: bytes) -> float | None:
    """The time scale an EngineConfigurationChannel message sets, or None for others."""
    if len(payload) >= 8:
        (kind,) = struct.unpack_from("<i", payload, 0)
        if kind == TIME_SCALE:
            return struct.unpack_from("<f", payload, 4)[0]
    return None
