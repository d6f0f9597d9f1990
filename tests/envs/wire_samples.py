"""Serialise a fixed set of protocol messages and print them as JSON {name: hex}.

Run by tests/envs/test_protobuf_routes.py under each protobuf route's interpreter; the
routes must agree byte for byte. Built with the env's builders (envs/unity_player/messages.py)
and with the stock client's own builders, so both sides of the wire are covered.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402

from envs import protobuf_compat  # noqa: E402
from envs.drone.simulation import BEHAVIOR, SPEC  # noqa: E402
from envs.unity_player import messages  # noqa: E402
from envs.unity_player.simulation import AgentBatch  # noqa: E402
from mlagents_envs.communicator_objects.command_pb2 import RESET, STEP  # noqa: E402
from mlagents_envs.communicator_objects.unity_message_pb2 import UnityMessageProto  # noqa: E402
from mlagents_envs.communicator_objects.unity_rl_initialization_input_pb2 import (  # noqa: E402
    UnityRLInitializationInputProto,
)
from mlagents_envs.environment import UnityEnvironment  # noqa: E402


def env_side() -> dict:
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(3, 9)).astype(np.float32)
    batch = AgentBatch(
        np.array([2, 0, 2]), [obs], np.array([1.0, -0.01, 0.0], np.float32),
        np.array([True, False, False]), np.array([False, False, False]),
    )
    step = messages.OutputBuilder((SPEC,)).build({BEHAVIOR: batch})  # with brain parameters
    return {"init_output": messages.initialization_message("Drone", "/tmp/Player-0.log"),
            "step": step}


def client_side() -> dict:
    init = UnityMessageProto()
    init.header.status = 200
    init.unity_input.rl_initialization_input.CopyFrom(UnityRLInitializationInputProto(
        seed=7, communication_version="1.5.0", package_version="1.1.0", num_areas=16,
        capabilities=UnityEnvironment._get_capabilities_proto()))
    step = UnityMessageProto()
    step.header.status = 200
    rl_in = step.unity_input.rl_input
    rl_in.command = STEP
    for row in ([0.5, -1.0, 0.25], [0.0, 1.0, -0.75]):
        rl_in.agent_actions[BEHAVIOR].value.add(continuous_actions=row)
    rl_in.side_channel = messages.ENGINE_CONFIGURATION_CHANNEL.bytes_le + b"\x08\0\0\0" + (
        b"\x02\0\0\0\0\0@A")
    reset = UnityMessageProto()
    reset.unity_input.rl_input.command = RESET
    close = UnityMessageProto()
    close.header.status = 400
    return {"init_input": init, "step_input": step, "reset_input": reset, "close": close}


def main() -> None:
    samples = {**env_side(), **client_side()}
    out = {name: m.SerializeToString(deterministic=True).hex() for name, m in samples.items()}
    # Parsing must round-trip too: re-serialise what we parse.
    for name, m in samples.items():
        parsed = UnityMessageProto.FromString(bytes.fromhex(out[name]))
        assert parsed == m, name
    print(json.dumps({"route": protobuf_compat.route(), "messages": out}))


if __name__ == "__main__":
    main()
