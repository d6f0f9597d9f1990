"""Unit tests of the headless Drone physics (envs/drone/physics.py), without the protocol.

Every expected number here is worked out by hand from the facts in
docs/drone-env.md, not read back from the implementation.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from envs.drone.physics import DT, DronePhysics

# ---------------------------------------------------------------- helpers


def make(num_areas: int = 1, seed: int = 0, max_step: int = 0) -> DronePhysics:
    return DronePhysics(num_areas=num_areas, seed=seed, max_step=max_step)


def act(a0: float = 0.0, a1: float = 0.0, a2: float = 0.0, n: int = 1) -> np.ndarray:
    """(n, 3) action: a0 drive (z), a1 strafe (x), a2 lift (y)."""
    return np.tile(np.array([a0, a1, a2], dtype=np.float32), (n, 1))


def place(p: DronePhysics, offset, vel=(0.0, 0.0, 0.0)) -> None:
    """Put every drone at `offset` from its goal (drone - goal) with velocity `vel`."""
    p.pos[:] = 0.0
    p.goal[:] = -np.asarray(offset, dtype=np.float64)
    p.vel[:] = vel
    p.dist[:] = np.linalg.norm(p.pos - p.goal, axis=1)


def run(p: DronePhysics, action: np.ndarray, steps: int):
    """Step `steps` times under a constant action; returns the last StepResult."""
    result = None
    for _ in range(steps):
        result = p.step(action)
    return result


def velocity_after(action: np.ndarray, steps: int) -> np.ndarray:
    p = make()
    run(p, action, steps)
    return p.vel[0]


# ---------------------------------------------------------------- velocity tracking

# (action, obs axis, velocity after 1 step, after 2 steps). Target = input * speed
# (+z 7, -z 5, x 5, y 5); x, z close 30% of the gap per step, y 20%.
TRACKING = [
    (act(a0=1.0), 2, 2.1, 2.1 + 0.3 * (7.0 - 2.1)),
    (act(a0=-1.0), 2, -1.5, -1.5 + 0.3 * (-5.0 + 1.5)),
    (act(a0=0.5), 2, 1.05, 1.05 + 0.3 * (3.5 - 1.05)),
    (act(a1=1.0), 0, 1.5, 2.55),
    (act(a1=-0.5), 0, -0.75, -0.75 + 0.3 * (-2.5 + 0.75)),
    (act(a2=1.0), 1, 1.0, 1.8),
    (act(a2=-1.0), 1, -1.0, -1.8),
]


@pytest.mark.parametrize("action, axis, v1, v2", TRACKING)
def test_velocity_tracks_action_times_speed(action, axis, v1, v2):
    for steps, expected in ((1, v1), (2, v2)):
        vel = velocity_after(action, steps)
        assert vel[axis] == pytest.approx(expected, abs=1e-12)
        others = [i for i in range(3) if i != axis]
        assert np.all(vel[others] == 0.0)


def test_position_integrates_velocity_over_dt():
    p = make()
    place(p, (4.0, 0.0, 0.0))
    p.step(act(a1=1.0))
    p.step(act(a1=1.0))
    assert p.pos[0, 0] == pytest.approx((1.5 + 2.55) * DT, abs=1e-12)
    assert p.observe()[0, 0] == pytest.approx(4.0 + (1.5 + 2.55) * DT, abs=1e-6)


def test_zero_input_decays_x_z_by_4_and_y_by_6_percent():
    p = make()
    v0 = np.array([2.0, 3.0, -4.0])
    place(p, (5.0, 5.0, 5.0), vel=v0)
    rate = np.array([0.96, 0.94, 0.96])
    p.step(act())
    np.testing.assert_allclose(p.vel[0], v0 * rate, rtol=1e-12)
    p.step(act())
    np.testing.assert_allclose(p.vel[0], v0 * rate**2, rtol=1e-12)


def test_decay_applies_only_to_axes_with_zero_input():
    p = make()
    place(p, (5.0, 5.0, 5.0), vel=(2.0, 3.0, -4.0))
    p.step(act(a1=1.0))  # x tracks +5, y and z decay
    np.testing.assert_allclose(p.vel[0], [2.0 + 0.3 * 3.0, 3.0 * 0.94, -4.0 * 0.96])


def test_small_nonzero_input_tracks_instead_of_decaying():
    p = make()
    place(p, (5.0, 5.0, 5.0), vel=(0.0, 3.0, 0.0))
    p.step(act(a2=1e-6))  # target ~0: y closes 20% of the gap, not 6%
    assert p.vel[0, 1] == pytest.approx(3.0 * 0.8 + 0.2 * 5e-6, abs=1e-12)


# ---------------------------------------------------------------- action mapping


@pytest.mark.parametrize("index, axis", [(0, 2), (1, 0), (2, 1)])
def test_each_action_component_moves_only_its_world_axis(index, axis):
    action = np.zeros((1, 3), dtype=np.float32)
    action[0, index] = -0.8
    p = make()
    place(p, (3.0, 3.0, 3.0))
    run(p, action, 5)
    obs = p.observe()[0]
    moved_pos = np.flatnonzero(obs[0:3] != 3.0)
    moved_vel = np.flatnonzero(obs[3:6] != 0.0)
    assert moved_pos.tolist() == [axis]
    assert moved_vel.tolist() == [axis]
    assert obs[3 + axis] < 0.0


@pytest.mark.parametrize("big, clipped", [(5.0, 1.0), (-3.0, -1.0), (1.5, 1.0)])
@pytest.mark.parametrize("index", [0, 1, 2])
def test_actions_outside_unit_range_are_clipped(index, big, clipped):
    wild, tame = np.zeros((1, 3)), np.zeros((1, 3))
    wild[0, index], tame[0, index] = big, clipped
    a, b = make(), make()
    run(a, wild, 10)
    run(b, tame, 10)
    np.testing.assert_array_equal(a.observe(), b.observe())
    np.testing.assert_array_equal(a.quat, b.quat)


# ---------------------------------------------------------------- reset


def assert_fresh(p: DronePhysics, idx) -> None:
    """Areas `idx` are at the start of an episode."""
    assert np.all(p.pos[idx] == 0.0)
    assert np.all(p.vel[idx] == 0.0)
    assert np.all(p.ang_vel[idx] == 0.0)
    np.testing.assert_array_equal(p.quat[idx], np.tile([0.0, 0.0, 0.0, 1.0], (len(idx), 1)))
    assert np.all(p.episode_steps[idx] == 0)
    np.testing.assert_allclose(p.dist[idx], np.linalg.norm(p.goal[idx], axis=1))


def test_reset_starts_at_origin_with_goal_uniform_in_5_cube():
    p = make(num_areas=4000, seed=7)
    goals = []
    for _ in range(5):
        run(p, act(1.0, -1.0, 0.5, n=4000), 3)
        p.reset()
        assert_fresh(p, np.arange(4000))
        goals.append(p.goal.copy())
    goals = np.concatenate(goals)
    assert np.all(np.abs(goals) <= 5.0)
    assert np.all(goals.min(axis=0) < -4.95) and np.all(goals.max(axis=0) > 4.95)
    np.testing.assert_allclose(goals.mean(axis=0), 0.0, atol=0.1)  # sd of mean ~0.02
    np.testing.assert_allclose(goals.std(axis=0), 10 / np.sqrt(12), rtol=0.02)


def test_partial_reset_touches_only_masked_areas():
    p = make(num_areas=6, seed=1)
    run(p, act(1.0, 1.0, 1.0, n=6), 4)
    before = {k: getattr(p, k).copy() for k in ("pos", "vel", "ang_vel", "quat", "goal")}
    mask = np.array([True, False, False, True, False, True])
    p.reset(mask)
    reset, kept = np.flatnonzero(mask), np.flatnonzero(~mask)
    assert_fresh(p, reset)
    assert np.all(p.goal[reset] != before["goal"][reset])
    for name, old in before.items():
        np.testing.assert_array_equal(getattr(p, name)[kept], old[kept])
    assert np.all(p.episode_steps[kept] == 4)


# ---------------------------------------------------------------- reward and termination


def test_reward_is_distance_gained_minus_step_penalty():
    p = make()
    place(p, (3.0, 0.0, 0.0), vel=(-5.0, 0.0, 0.0))
    r = p.step(act())  # x velocity decays to -4.8: the drone gains 0.096 m
    assert r.reward[0] == pytest.approx(0.096 - 0.01, abs=1e-6)
    r = p.step(act(a1=1.0))  # x velocity -4.8 + 0.3 * 9.8 = -1.86: it gains 0.0372 m
    assert r.reward[0] == pytest.approx(0.0372 - 0.01, abs=1e-6)
    assert not r.terminated[0] and not r.truncated[0]


def test_moving_away_is_penalised():
    p = make()
    place(p, (0.0, 0.0, 3.0), vel=(0.0, 0.0, 5.0))
    r = p.step(act())  # z velocity 4.8: loses 0.096 m
    assert r.reward[0] == pytest.approx(-0.096 - 0.01, abs=1e-6)


@pytest.mark.parametrize(
    "offset, vel, reward, reached",
    [
        ((0.55, 0.0, 0.0), (-5.0, 0.0, 0.0), 1.0, True),  # d 0.454
        ((0.5, 0.0, 0.0), (0.0, 0.0, 0.0), 1.0, True),  # d exactly 0.5
        ((0.0, 9.95, 0.0), (0.0, 5.0, 0.0), -1.0, False),  # d 10.044
        ((0.0, 0.0, -9.99), (0.0, 0.0, -5.0), -1.0, False),  # d 10.086
    ],
)
def test_goal_and_out_of_range_set_reward_and_terminate(offset, vel, reward, reached):
    p = make(max_step=100)
    place(p, offset, vel)
    r = p.step(act())
    assert r.reward[0] == reward
    assert r.reward.dtype == np.float32
    assert r.terminated[0] and not r.truncated[0]
    assert r.reached_goal[0] == reached


def test_distance_exactly_10_does_not_terminate():
    p = make()
    place(p, (6.0, 8.0, 0.0))
    r = p.step(act())
    assert not r.terminated[0]
    assert r.reward[0] == pytest.approx(-0.01, abs=1e-7)


def test_step_limit_truncates_without_terminating():
    p = make(max_step=5)
    place(p, (3.0, 3.0, 3.0))
    for step in range(1, 6):
        r = p.step(act())
        assert not r.terminated[0]
        assert r.truncated[0] == (step == 5)
    p.reset()
    place(p, (3.0, 3.0, 3.0))
    assert not run(p, act(), 4).truncated[0]  # the count restarts with the episode
    assert run(p, act(), 1).truncated[0]


def test_termination_wins_over_truncation_on_the_same_step():
    p = make(num_areas=2, max_step=3)
    place(p, (0.62, 0.0, 0.0))  # x velocity -1.5, -2.55, -3.285: d 0.59, 0.539, 0.473
    assert not run(p, act(a1=-1.0, n=2), 2).terminated.any()
    r = p.step(act(a1=-1.0, n=2))
    assert r.terminated.all() and r.reached_goal.all()
    assert not r.truncated.any()
    assert np.all(r.reward == 1.0)


def test_max_step_zero_means_no_limit():
    p = make(max_step=0)
    place(p, (3.0, 3.0, 3.0))
    for _ in range(5000):
        r = p.step(act())
        assert not (r.terminated[0] or r.truncated[0])


# ---------------------------------------------------------------- rotation


def assert_rotation_sane(p: DronePhysics, bound: float = 1.0) -> None:
    assert np.all(np.isfinite(p.ang_vel))
    assert np.abs(p.ang_vel).max() < bound
    assert np.all(p.ang_vel[:, 1] == 0.0)  # yaw rate held at 0
    np.testing.assert_allclose(np.linalg.norm(p.quat, axis=1), 1.0, atol=1e-9)


def test_angular_velocity_responds_to_drive_and_strafe():
    p = make()
    place(p, (3.0, 3.0, 3.0))
    run(p, act(a0=1.0), 20)
    assert abs(p.ang_vel[0, 0]) > 1e-3  # driving along z pitches about x
    p = make()
    run(p, act(a1=1.0), 20)
    assert abs(p.ang_vel[0, 2]) > 1e-3  # strafing along x rolls about z
    assert_rotation_sane(p)


def test_yaw_rate_is_held_at_zero():
    p = make(num_areas=2)
    p.ang_vel[:] = (0.0, 3.0, 0.0)  # a spin about y from outside is cancelled at once
    p.step(act(1.0, 1.0, 1.0, n=2))
    assert np.all(p.ang_vel[:, 1] == 0.0)


ALL_CONSTANT = np.array(list(itertools.product([-1.0, 0.0, 1.0], repeat=3)))


def test_rotation_stays_bounded_under_constant_inputs():
    n = len(ALL_CONSTANT)
    p = make(num_areas=n)
    for _ in range(3000):
        p.step(ALL_CONSTANT)
        p.pos[:] = 0.0  # keep the drones in range: only the rotation matters here
        assert_rotation_sane(p)
    assert np.abs(p.quat[:, [0, 2]]).max() < 0.05


def test_rotation_stays_bounded_under_random_inputs():
    rng = np.random.default_rng(0)
    p = make(num_areas=32)
    for _ in range(3000):
        p.step(rng.uniform(-2.0, 2.0, size=(32, 3)))
        p.pos[:] = 0.0
        assert_rotation_sane(p)


def test_angular_velocity_decays_when_input_stops():
    p = make()
    run(p, act(1.0, 1.0, 0.0), 30)
    peak = np.abs(p.ang_vel).max()
    assert peak > 1e-3
    run(p, act(), 500)
    assert np.abs(p.ang_vel).max() < 1e-3 * peak
    np.testing.assert_allclose(p.quat[0], [0.0, 0.0, 0.0, 1.0], atol=1e-5)
    assert_rotation_sane(p)


# ---------------------------------------------------------------- seeding and observation


def test_same_seed_same_goals_and_different_seed_different_goals():
    a, b, c = make(16, seed=3), make(16, seed=3), make(16, seed=4)
    np.testing.assert_array_equal(a.goal, b.goal)
    assert np.all(a.goal != c.goal)
    mask = np.arange(16) % 2 == 0
    for p in (a, b):
        p.reset(mask)
        p.reset()
    np.testing.assert_array_equal(a.goal, b.goal)


def test_observation_is_offset_velocity_angular_velocity_float32():
    rng = np.random.default_rng(1)
    p = make(num_areas=5, seed=2)
    for _ in range(25):
        p.step(rng.uniform(-1.0, 1.0, size=(5, 3)))
    obs = p.observe()
    assert obs.shape == (5, 9) and obs.dtype == np.float32
    expected = np.concatenate([p.pos - p.goal, p.vel, p.ang_vel], axis=1)
    np.testing.assert_allclose(obs, expected, rtol=1e-6, atol=1e-7)
    assert np.abs(obs[:, 6:9]).max() > 0.0
