"""The two protobuf routes: the fast one (current upb runtime, message classes rebuilt from
the descriptors embedded in mlagents-envs) and the pure-Python protobuf 3.20.3 fallback."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from envs import protobuf_compat
from envs.drone import DRONE_EXECUTABLE

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PB3_PYTHON = os.path.join(REPO, ".venv-pb3", "bin", "python")


@pytest.fixture(scope="module")
def pb3_python() -> str:
    if not os.access(PB3_PYTHON, os.X_OK):
        pytest.fail(f"fallback route missing: {PB3_PYTHON}; run `make install-pb3`")
    return PB3_PYTHON


def wire_samples(python: str) -> dict:
    out = subprocess.run([python, os.path.join(HERE, "wire_samples.py")], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    return json.loads(out)


def test_this_process_runs_the_fast_route():
    from google.protobuf.internal import api_implementation

    assert api_implementation.Type() == "upb"
    assert protobuf_compat.route() == "upb+descriptors"
    from mlagents_envs.communicator_objects import agent_info_pb2

    # Built by the current runtime from the embedded descriptor, not by hand.
    assert agent_info_pb2.DESCRIPTOR.name == "mlagents_envs/communicator_objects/agent_info.proto"
    assert agent_info_pb2.AgentInfoProto.DESCRIPTOR.fields_by_name["max_step_reached"].number == 9


def test_embedded_descriptor_is_read_from_the_old_module():
    from mlagents_envs.communicator_objects import header_pb2

    with open(header_pb2.__file__, encoding="utf-8") as f:
        serialized = protobuf_compat.embedded_descriptor(f.read())
    assert serialized == header_pb2.DESCRIPTOR.serialized_pb


def test_both_routes_produce_identical_bytes(pb3_python):
    fast = wire_samples(sys.executable)
    fallback = wire_samples(pb3_python)
    assert fast["route"] == "upb+descriptors"
    assert fallback["route"] == "python-3.20.3"
    assert set(fast["messages"]) == {"init_output", "step", "init_input", "step_input",
                                      "reset_input", "close"}
    assert fast["messages"] == fallback["messages"]


FALLBACK_CLIENT = textwrap.dedent("""
    import sys, numpy as np
    import envs
    from envs import protobuf_compat
    from mlagents_envs.environment import UnityEnvironment
    from mlagents_envs.base_env import ActionTuple
    env = UnityEnvironment(file_name=sys.argv[1], worker_id=int(sys.argv[2]), num_areas=4,
                           no_graphics=True, log_folder=sys.argv[3],
                           additional_args=["--max-step", "30"])
    try:
        env.reset()
        name = list(env.behavior_specs)[0]
        ended = 0
        for _ in range(30):
            env.set_actions(name, ActionTuple(continuous=np.zeros((4, 3), np.float32)))
            env.step()
            ended += len(env.get_steps(name)[1])
        print(protobuf_compat.route(), ended)
    finally:
        env.close()
""")


def test_fallback_route_drives_the_drone_end_to_end(pb3_python, tmp_path):
    worker_id = 75
    env = dict(os.environ, DRONE_PYTHON=pb3_python)  # the env process on the route too
    done = subprocess.run([pb3_python, "-c", FALLBACK_CLIENT, DRONE_EXECUTABLE,
                           str(worker_id), str(tmp_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["python-3.20.3", "4"]  # all 4 interrupted at step 30
    player_log = (tmp_path / f"Player-{worker_id}.log").read_text()
    assert "protobuf route python-3.20.3" in player_log
