"""Phase 3: Kafka as the message bus, and the task-manager."""
