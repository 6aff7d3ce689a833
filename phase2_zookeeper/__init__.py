"""Phase 2: ZooKeeper coordination (agent registry, leader election, failover)."""
