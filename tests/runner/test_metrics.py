"""Episode statistics: what the summary's means cover; the TensorBoard events file."""

import os

from actors.agents import Episode
from runner.metrics import EpisodeStats


def test_the_test_phase_mean_covers_every_episode_and_training_the_last_100():
    def episodes(returns):
        return [Episode(episode_return=r, length=10, success=None, interrupted=False,
                        agent_id=0) for r in returns]

    train, test = EpisodeStats(), EpisodeStats(window=None)
    for stats in (train, test):
        stats.add(episodes([0.0] * 150 + [1.0] * 100))
    assert train.summary()["mean_return"] == 1.0 and train.summary()["mean_over"] == 100
    assert test.summary()["mean_return"] == 0.4 and test.summary()["mean_over"] == 250


def test_a_session_that_logs_nothing_leaves_no_events_file(tmp_path):
    """A refused --resume (a corrupt checkpoint, a changed spec) left an empty events
    file in the run folder each time: TensorBoard listed it as a run of its own."""
    from runner.metrics import Metrics

    Metrics(str(tmp_path), log_interval=10).close()
    assert not [f for f in os.listdir(tmp_path) if f.startswith("events.out.tfevents")]
    metrics = Metrics(str(tmp_path), log_interval=10)
    metrics.scalars({"charts/SPS": 1.0}, 0)
    metrics.close()
    assert len([f for f in os.listdir(tmp_path) if f.startswith("events.out.tfevents")]) == 1
