"""ZooKeeper: the session, the live-agent registry, leader election, service discovery."""
