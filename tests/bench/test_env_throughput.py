"""bench/env_throughput.py's second interpreter: the route `make bench` cannot measure
in this process."""

from bench.env_throughput import run_fallback


def test_the_fallback_route_worker_runs_on_its_own_interpreter():
    """The pure-Python protobuf route runs this module in --worker mode on .venv-pb3; run
    as a script path it failed with ModuleNotFoundError: No module named 'bench'."""
    out = run_fallback(steps=20, warmup=5)
    assert out["protobuf_route"] == "python-3.20.3"
    assert out["client_steps_per_s_1_area"] > 0 and out["client_agent_steps_per_s_16_areas"] > 0


def test_a_quick_run_leaves_the_measured_results_as_they_were(tmp_path, monkeypatch, capsys):
    """`make bench ARGS=--quick` overwrote the committed numbers with a smoke run's."""
    from bench import env_throughput

    results = tmp_path / "env_throughput.json"
    results.write_text('{"measured": true}')
    monkeypatch.setattr(env_throughput, "RESULTS", str(results))
    monkeypatch.setattr(env_throughput, "collect", lambda steps, warmup: {"quick": steps})
    monkeypatch.setattr(env_throughput, "print_table", lambda r: None)
    assert env_throughput.main(["--quick"]) == 0
    assert results.read_text() == '{"measured": true}'
    assert env_throughput.main(["--steps", "7"]) == 0
    assert results.read_text() == '{\n  "quick": 7\n}'
