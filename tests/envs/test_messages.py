"""The protocol server's message building and action reading, checked against protobuf's
own API (what the encoder's byte joins must equal) and the stock client's parser."""

import numpy as np
import pytest

import envs  # noqa: F401
from envs.unity_player import messages
from envs.unity_player.agent_infos import BehaviorEncoder, varint
from envs.unity_player.simulation import AgentBatch, BehaviorSpec, ObservationSpec
from mlagents_envs.communicator_objects.command_pb2 import STEP
from mlagents_envs.communicator_objects.unity_message_pb2 import UnityMessageProto
from mlagents_envs.communicator_objects.unity_rl_output_pb2 import UnityRLOutputProto
from mlagents_envs.rpc_utils import behavior_spec_from_proto, steps_from_proto

VECTOR = ObservationSpec((4,), "VectorSensor_size4")
IMAGE = ObservationSpec((3, 2, 2), "CameraSensor")
SPEC = BehaviorSpec("Mixed?team=0", (VECTOR, IMAGE), continuous=2, discrete=(3, 2))


def reference(spec: BehaviorSpec, batch: AgentBatch) -> bytes:
    """The same agents built one field at a time through protobuf's API."""
    infos = UnityRLOutputProto.ListAgentInfoProto()
    for i in range(len(batch)):
        info = infos.value.add(reward=float(batch.reward[i]), done=bool(batch.done[i]),
                               max_step_reached=bool(batch.max_step_reached[i]),
                               id=int(batch.agent_id[i]))
        for o_spec, obs in zip(spec.observations, batch.obs):
            ob = info.observations.add(shape=o_spec.shape, name=o_spec.name)
            ob.dimension_properties.extend(o_spec.dimension_properties)
            ob.float_data.data.extend(obs[i].ravel().tolist())
    return infos.SerializeToString(deterministic=True)


def encoded(spec: BehaviorSpec, batch: AgentBatch) -> bytes:
    infos = UnityRLOutputProto.ListAgentInfoProto()
    infos.MergeFromString(BehaviorEncoder(spec).encode(batch))
    return infos.SerializeToString(deterministic=True)


def mixed_batch(ids, rng) -> AgentBatch:
    n = len(ids)
    return AgentBatch(np.array(ids), [rng.normal(size=(n, 4)).astype(np.float32),
                                      rng.uniform(size=(n, 3, 2, 2)).astype(np.float32)],
                      rng.normal(size=n).astype(np.float32), np.array([True, False] * (n // 2)),
                      np.array([True, False, False, False] * (n // 4)))


@pytest.mark.parametrize("ids", [[0, 1, 2, 3], [5000, 127, 128, -1], [2**31 - 1, 0, 16384, 7]])
def test_encoder_equals_protobuf_api(ids):
    batch = mixed_batch(ids, np.random.default_rng(len(ids) + ids[0]))
    assert encoded(SPEC, batch) == reference(SPEC, batch)


def test_encoder_keeps_nan_inf_and_zero_rewards():
    batch = mixed_batch([0, 1, 2, 3], np.random.default_rng(1))
    batch.reward[:] = [np.nan, np.inf, 0.0, -0.0]
    batch.obs[0][1, 2] = -np.inf
    infos = UnityRLOutputProto.ListAgentInfoProto()
    infos.MergeFromString(BehaviorEncoder(SPEC).encode(batch))
    assert np.isnan(infos.value[0].reward) and infos.value[1].reward == np.inf
    assert infos.value[1].observations[0].float_data.data[2] == -np.inf
    assert encoded(SPEC, batch) == reference(SPEC, batch)


def test_varint_matches_protobuf():
    for value in [1, 127, 128, 300, 2**31 - 1, -1, -2**31]:
        info = UnityRLOutputProto.ListAgentInfoProto().value.add(id=value)
        # AgentInfoProto.id is field 10, a varint: tag byte 0x50, then the value
        assert info.SerializeToString() == b"\x50" + varint(value)
    assert varint(0) == b"\x00"


def test_stock_client_reads_what_the_builder_sends():
    builder = messages.OutputBuilder((SPEC,))
    batch = mixed_batch([7, 3, 7, 9], np.random.default_rng(2))
    batch.done[:] = [True, False, False, False]  # agent 7's end and its next first decision
    msg = UnityMessageProto.FromString(builder.build({SPEC.name: batch}).SerializeToString())
    brains = msg.unity_output.rl_initialization_output.brain_parameters
    infos = msg.unity_output.rl_output.agentInfos[SPEC.name].value
    spec = behavior_spec_from_proto(brains[0], infos[0])
    assert [o.shape for o in spec.observation_specs] == [(4,), (3, 2, 2)]
    assert [int(d) for d in spec.observation_specs[1].dimension_property] == [2, 2, 1]
    assert spec.action_spec.continuous_size == 2
    assert spec.action_spec.discrete_branches == (3, 2)
    decision, terminal = steps_from_proto(infos, spec)
    assert list(terminal.agent_id) == [7] and list(decision.agent_id) == [3, 7, 9]
    assert list(terminal.interrupted) == [True]
    np.testing.assert_array_equal(decision.obs[1], batch.obs[1][[1, 2, 3]])  # HWC as sent
    np.testing.assert_array_equal(terminal.obs[0], batch.obs[0][[0]])


def test_brain_parameters_go_once_and_only_with_agents():
    a = BehaviorSpec("A?team=0", (VECTOR,), continuous=1)
    b = BehaviorSpec("B?team=0", (VECTOR,), discrete=(2,))
    builder = messages.OutputBuilder((a, b))
    one = AgentBatch.decisions([0], [np.zeros((1, 4), np.float32)])
    none = AgentBatch.decisions(np.zeros(0, int), [np.zeros((0, 4), np.float32)])

    def brains(msg):
        return [p.brain_name for p in msg.unity_output.rl_initialization_output.brain_parameters]

    assert brains(builder.build({a.name: one, b.name: none})) == ["A?team=0"]
    assert brains(builder.build({a.name: one, b.name: one})) == ["B?team=0"]
    assert brains(builder.build({a.name: one, b.name: one})) == []
    with pytest.raises(KeyError, match="unknown behavior"):
        builder.build({"C?team=0": one})


def step_input(rows: dict[str, list[tuple[list[float], list[int]]]]) -> UnityMessageProto:
    msg = UnityMessageProto()
    msg.header.status = 200
    rl_in = msg.unity_input.rl_input
    rl_in.command = STEP
    for name, agents in rows.items():
        for cont, disc in agents:
            rl_in.agent_actions[name].value.add(continuous_actions=cont, discrete_actions=disc)
    return msg


def test_actions_follow_the_asked_agents_in_order():
    specs = {SPEC.name: SPEC}
    msg = step_input({SPEC.name: [([0.5, -1.0], [2, 1]), ([0.25, 1.0], [0, 0])]})
    got = messages.read_actions(msg, {SPEC.name: np.array([9, 4])}, specs)[SPEC.name]
    assert list(got.agent_id) == [9, 4]
    np.testing.assert_array_equal(got.continuous, [[0.5, -1.0], [0.25, 1.0]])
    np.testing.assert_array_equal(got.discrete, [[2, 1], [0, 0]])
    assert got.continuous.dtype == np.float32 and got.discrete.dtype == np.int32


def test_missing_or_short_action_rows_are_zeros():
    specs = {SPEC.name: SPEC}
    msg = step_input({SPEC.name: [([0.5], [1])]})
    got = messages.read_actions(msg, {SPEC.name: np.array([1, 2])}, specs)[SPEC.name]
    np.testing.assert_array_equal(got.continuous, [[0.5, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(got.discrete, [[1, 0], [0, 0]])
    nothing = messages.read_actions(step_input({}), {SPEC.name: np.array([3])}, specs)
    np.testing.assert_array_equal(nothing[SPEC.name].continuous, [[0.0, 0.0]])


def test_observation_spec_refuses_other_ranks():
    with pytest.raises(ValueError, match="neither"):
        ObservationSpec((3, 4), "grid")
