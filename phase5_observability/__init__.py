"""Phase 5: observability, hardened failover, production features."""
