"""The task-manager (phase 3 on): the one writer of agents' reports and heartbeats to Redis."""
