"""Building blocks shared by every phase: task model, state machine, store, executors, config."""
