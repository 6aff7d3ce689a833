"""The core every phase imports: what a task is, its states, and the Redis store.

Nothing here knows about ZooKeeper, Kafka or gRPC. ``task`` (the spec and the stored
record), ``states`` (the transition table), ``store`` (atomic, fenced changes in Redis,
with its Lua in ``lua/``), ``keys`` (the Redis key layout), and the process plumbing:
``config``, ``logs``, ``lifecycle``, ``waiting``.
"""
