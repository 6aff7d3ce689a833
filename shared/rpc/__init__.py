"""The task-manager's gRPC interface: ``task_service.proto`` and its generated code."""
