"""The Celery side of ``benchmarks/versus_celery.py``: one task that runs ``true`` in a shell.

    CELERY_BENCH_REDIS=redis://127.0.0.1:6390/0 \\
        celery -A benchmarks.celery_app worker --pool prefork -c 2 -Q bench

Redis is both the broker and the result backend (``CELERY_BENCH_REDIS``). The settings
are Celery's defaults except where taskflow's guarantees ask for the same: a task is
acknowledged after it ran (``task_acks_late``), so a worker that dies mid-task leaves it
to another, as a taskflow agent's death does; and the prefetch stays at Celery's default
(4 tasks per process).
"""

from __future__ import annotations

import os
import subprocess

from celery import Celery

URL_ENV = "CELERY_BENCH_REDIS"
QUEUE = "bench"

app = Celery("bench", broker=os.environ.get(URL_ENV), backend=os.environ.get(URL_ENV))
app.conf.update(
    task_acks_late=True,
    task_default_queue=QUEUE,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


# --8<-- [start:task]
@app.task(name="bench.true")
def run_true() -> int:
    """What a taskflow agent runs for a SHELL task whose content is ``true``, minus the
    guard and the sandbox: one ``/bin/sh -c true``."""
    return subprocess.run(["/bin/sh", "-c", "true"], check=True).returncode


# --8<-- [end:task]
