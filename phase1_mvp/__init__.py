"""Phase 1: one agent pulls tasks from a Redis list and writes results into Redis hashes."""
