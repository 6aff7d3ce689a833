"""Building blocks every phase imports, in layers; a lower layer never imports a higher one.

    core          the task, its states, the Redis store, config, logs, lifecycle
    execution     executors and the runner (core)
    coordination  ZooKeeper: session, registry, election, services (core)
    messaging     Kafka: clients, messages, topics, offsets, partitions (core)
    scheduling    the leader: loop, strategies, hand-over (the three above)
    agent         the Kafka agent: loop, reports, heartbeats, cancels (the four above)
    manager       the task-manager: reports and heartbeats into Redis (core, messaging)
    rpc           the gRPC task service, its client, conversions (all of the above)
    devtools      local servers and helpers for demos, tests, benchmarks (never imported
                  by the running system)

docs/code-map.md draws the layers and what each phase imports.
"""
