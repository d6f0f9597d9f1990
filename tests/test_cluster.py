"""Ray mode on a 2-node `ray.cluster_utils.Cluster`: workers on both nodes, training goes on.

Its own module: it needs Ray not to be initialised already (test_distributed keeps a
local instance for its whole module)."""

import ray

from tests.test_distributed import tiny
from runner.distributed import run_distributed
from runner.ray_address import address_problem


def test_two_node_cluster_places_workers_on_both(tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        assert address_problem(cluster.address) is None  # a real GCS passes launch's probe
        ray.init(address=cluster.address, logging_level="warning")
        cfg, run_dir = tiny(tmp_path, "cluster", 5520, num_workers=2, train_steps=1500)
        summary = run_distributed(cfg, run_dir)
        assert len({w["node"] for w in summary["workers"]}) == 2
        assert all(w["inserted"] > 0 for w in summary["workers"])
        assert summary["learner_steps"] > 0 and summary["env_steps"] >= 1500
    finally:
        ray.shutdown()
        cluster.shutdown()
