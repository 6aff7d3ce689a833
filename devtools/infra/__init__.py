"""Real Redis, ZooKeeper, Kafka and Prometheus as local processes, for development and tests.

No Docker engine runs on our machines, so the project starts the servers itself: Redis
and Prometheus from the Debian packages, ZooKeeper and Kafka from their official Maven
Central artifacts on the machine's Java. ``python -m devtools.infra up`` starts them;
``tests.fixtures`` gives tests private instances. See docs/infrastructure.md.
"""
