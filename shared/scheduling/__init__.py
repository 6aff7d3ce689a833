"""The elected leader's side (phase 2 on): its loop, strategies, and the Redis hand-over."""
