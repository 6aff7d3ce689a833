"""Gunicorn's settings for the phase 5 API: what a request may be, and how long anyone waits.

``processes.conf`` and the test stacks run ``gunicorn -c
python:phase5_observability.gunicorn_conf --bind ... --workers 2
'phase5_observability.api:create_app()'``; an option given on the command line wins over
the value here. Gunicorn reads the lower-case names it knows; ``read_timeout`` is the
worker's own (gunicorn_worker.py).

What each value is for, and why it is this number: docs/security.md, "The limits, and
why these numbers".

Gunicorn's master also sets phase 5's defaults of the settings the API reads, as it
starts, before it starts the workers (``on_starting``; ``TASK_TYPES``: HTTP tasks are
phase 5's). Not when this file is imported: a process that reads these values (a test)
must not change its own environment by it.
"""

import os
from typing import Any

from shared.core.config import PHASE5_TASK_TYPES


def on_starting(server: Any) -> None:
    os.environ.setdefault("TASK_TYPES", PHASE5_TASK_TYPES)


# The threaded worker with the API's JSON errors and bounded reads. ``SyncWorker`` (same
# module) is the sync one, one connection at a time: ``--worker-class ...SyncWorker
# --threads 1`` (with more threads, gunicorn runs its own threaded worker instead).
worker_class = "phase5_observability.gunicorn_worker.ThreadWorker"
threads = 32

limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
timeout = 30
graceful_timeout = 12
keepalive = 2

read_timeout = 5.0
head_timeout = 10.0
