"""Phase 4: the REST API and the gRPC task-manager service."""
