"""Fixtures every test can ask for: real servers, started on first use (tests/fixtures.py).

``redis_url``, ``zk_hosts``, ``kafka_bootstrap`` (session) and ``redis_client`` (flushed
per test). Set ``REDIS_URL``, ``ZK_HOSTS`` or ``KAFKA_BOOTSTRAP_SERVERS`` to test against
servers of your own instead.
"""

from tests.fixtures import kafka_bootstrap, redis_client, redis_url, zk_hosts, zk_root

__all__ = ["kafka_bootstrap", "redis_client", "redis_url", "zk_hosts", "zk_root"]
