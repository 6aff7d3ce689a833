"""The task-manager's gRPC side (phase 4 on): the service, its client, and conversions.

``task_service.proto`` and its generated code live here too.
"""
