"""Encode a batch of agents as the bytes of an ML-Agents `ListAgentInfoProto`.

Building one AgentInfoProto and one ObservationProto per agent through the protobuf API
costs several Python calls per agent and converts every float to a Python object; for
images that is most of a step. Here the parts that never change for an observation spec
(shape, dimension properties, name, lengths) are encoded once, and each agent's floats are
sliced out of one `tobytes()` of the batch, so an agent costs a few byte joins. The
result is parsed by protobuf itself (`MergeFromString`), so what goes on the wire is
still serialized by protobuf. Wire format: protobuf encoding (varints, length-delimited
fields, packed repeated scalars); field numbers are those of mlagents-envs'
agent_info.proto and observation.proto.
"""

from __future__ import annotations

import numpy as np

from envs.unity_player.simulation import AgentBatch, BehaviorSpec, ObservationSpec

# (field number << 3) | wire type: 0 varint, 2 length-delimited, 5 fixed32.
_LIST_VALUE = b"\x0a"  # ListAgentInfoProto.value = 1
_REWARD = b"\x3d"  # AgentInfoProto.reward = 7 (float)
_DONE = b"\x40\x01"  # done = 8 (bool true)
_MAX_STEP = b"\x48\x01"  # max_step_reached = 9 (bool true)
_ID = b"\x50"  # id = 10 (int32 varint)
_OBSERVATION = b"\x6a"  # observations = 13
_SHAPE = b"\x0a"  # ObservationProto.shape = 1 (packed int32)
_FLOAT_DATA = b"\x22"  # float_data = 4
_DIMENSION_PROPERTIES = b"\x32"  # dimension_properties = 6 (packed enum)
_NAME = b"\x42"  # name = 8 (string)
_DATA = b"\x0a"  # FloatData.data = 1 (packed float)
_FLAGS = {(False, False): b"", (True, False): _DONE, (True, True): _DONE + _MAX_STEP,
          (False, True): _MAX_STEP}


def varint(value: int) -> bytes:
    """Protobuf base-128 varint; negative int32 values take 10 bytes, as protobuf sends."""
    value &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


# Ids are usually small and reused: encode those once (a cache of every id seen would grow
# without bound in scenes that keep creating agents).
_SMALL_IDS = [_ID + varint(i) for i in range(4096)]


def _agent_id(agent_id: int) -> bytes:
    if 0 <= agent_id < 4096:
        return _SMALL_IDS[agent_id]
    return _ID + varint(agent_id)


class ObservationEncoder:
    """The constant bytes around one agent's floats for one observation spec."""

    def __init__(self, spec: ObservationSpec):
        self.size = spec.size
        nbytes = 4 * self.size
        shape = _length_delimited(_SHAPE, b"".join(varint(d) for d in spec.shape))
        float_data_len = len(_DATA) + len(varint(nbytes)) + nbytes
        head = shape + _FLOAT_DATA + varint(float_data_len) + _DATA + varint(nbytes)
        self.tail = _length_delimited(
            _DIMENSION_PROPERTIES, b"".join(varint(d) for d in spec.dimension_properties)
        ) + _length_delimited(_NAME, spec.name.encode())
        # AgentInfoProto.observations entry: tag, length, then the ObservationProto.
        self.head = _OBSERVATION + varint(len(head) + nbytes + len(self.tail)) + head
        self.stride = nbytes

    def rows(self, obs: np.ndarray) -> list[bytes]:
        """Each agent's complete observations entry, from a (n, *shape) array."""
        raw = np.ascontiguousarray(obs, dtype="<f4").tobytes()
        head, tail, stride = self.head, self.tail, self.stride
        return [head + raw[i:i + stride] + tail for i in range(0, len(raw), stride)]


class BehaviorEncoder:
    """Encodes AgentBatches of one behavior."""

    def __init__(self, spec: BehaviorSpec):
        self.observations = [ObservationEncoder(o) for o in spec.observations]

    def encode(self, batch: AgentBatch) -> bytes:
        """The ListAgentInfoProto bytes for `batch`, one AgentInfoProto per row."""
        n = len(batch)
        if n == 0:
            return b""
        rewards = np.ascontiguousarray(batch.reward, dtype="<f4").tobytes()
        per_obs = [enc.rows(o.reshape(n, -1)) for enc, o in zip(self.observations, batch.obs)]
        flags = zip(batch.done.tolist(), batch.max_step_reached.tolist())
        out = []
        for i, (agent_id, flag) in enumerate(zip(batch.agent_id.tolist(), flags)):
            info = b"".join([_REWARD, rewards[4 * i:4 * i + 4], _FLAGS[flag],
                             _agent_id(agent_id), *(rows[i] for rows in per_obs)])
            out.append(_LIST_VALUE + varint(len(info)) + info)
        return b"".join(out)
