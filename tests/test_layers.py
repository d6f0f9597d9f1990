"""The import graph: arrows run one way (layers, enforced by lint-imports in `make test`) and
no two modules import each other, directly or through others."""

import grimp

PACKAGES = ("envs", "actors", "replay", "learner", "runner")


def test_no_module_takes_part_in_an_import_cycle():
    graph = grimp.build_graph(*PACKAGES)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != module and graph.chain_exists(importer=imported, imported=module):
                cycles.append(f"{module} -> {imported} -> ... -> {module}")
    assert not cycles, cycles


def test_the_configs_are_light():
    """--help and a YAML file need the config dataclasses only: no torch, no mlagents, no
    Ray in what they import (config.py of every package)."""
    graph = grimp.build_graph(*PACKAGES, "torch", "mlagents_envs", "ray")
    for config in ("runner.config", "actors.config", "learner.config", "replay.config"):
        for heavy in ("torch", "mlagents_envs", "ray"):
            assert not graph.chain_exists(importer=config, imported=heavy, as_packages=True), (
                config, heavy, graph.find_shortest_chain(importer=config, imported=heavy))


def test_help_and_a_config_file_import_neither_torch_nor_mlagents():
    import os
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    probe = ("import atexit, runpy, sys; atexit.register(lambda: print('HEAVY', sorted(m for m"
             " in ('torch', 'mlagents_envs', 'ray') if m in sys.modules))); sys.argv = "
             "['launch.py'] + sys.argv[1:]; runpy.run_path('launch.py', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", probe, "configs/td3.yaml", "--help"],
                          cwd=repo, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--twin-critics" in done.stdout, done.stderr[-2000:]
    assert "HEAVY []" in done.stdout
