"""Gunicorn's settings for the phase 5 API: what a request may be, and how long anyone waits.

``processes.conf`` and the test stacks run ``gunicorn -c
python:phase5_observability.gunicorn_conf --bind ... --workers 2
'phase5_observability.api:create_app()'``; an option given on the command line wins over
the value here. Gunicorn reads the lower-case names it knows; ``read_timeout`` is the
worker's own (gunicorn_worker.py).

The numbers, and why:

* ``limit_request_line`` 4094 bytes (gunicorn's default, kept on purpose): the API's
  longest URL, a task list with every filter and a cursor, is a few hundred bytes.
  Longer: 414.
* ``limit_request_fields`` 50: a client sends about 5 headers (curl 3, a browser 15); a
  proxy adds ``X-Forwarded-*`` and the trace headers a few more. More: 431.
* ``limit_request_field_size`` 8190 bytes: the common 8 KiB header buffer of proxies
  (nginx), so a proxy in front and gunicorn refuse the same requests; a bearer token is
  well under 100 bytes. Longer: 431.
* ``read_timeout`` 5 s: the longest a worker waits for the next bytes of a request's
  headers or body, and for a new connection's first bytes. A client that sends the whole
  request at once never waits near it; one that stalls has its connection closed
  (headers) or gets a 408 (body) after 5 s.
* ``head_timeout`` 10 s: the whole head (request line and headers) must be in within
  this, from its first bytes, however steadily they trickle: a client sending a header
  byte every second is closed after 10 s. An honest head is one packet, in well under a
  second even on a slow mobile link; 10 s leaves room for a congested one.
* ``worker_class`` and ``threads`` 32: the threaded worker (gunicorn_worker.py), whose
  threads serve requests while slow or silent connections wait in its poller without
  one. 32 a worker, 64 for the 2 workers: a trickling head holds a thread for
  ``head_timeout`` at most, a wait (``?wait=``) for 10 s at most and at most
  ``API_WAITS`` (16) of them a worker, so 16 threads are left for everything else.
* ``timeout`` 30 s: a worker silent this long is killed and restarted by the master (the
  threaded worker's main loop tells the master it is alive whatever its threads do). The
  slowest honest request, a wait (``?wait=10``), makes at most two task-manager calls:
  10 + ``GRPC_DEADLINE`` (5 s), then what is left, 5 s at most; 30 s leaves a margin.
* ``graceful_timeout`` 12 s: on SIGTERM a worker finishes its request within this, longer
  than one call to each task-manager (2 x 5 s) or a wait (10 s); supervisord waits longer
  still (``stopwaitsecs`` 15) before it kills the master.
* ``keepalive`` 2 s: how long a threaded worker keeps an idle connection for its next
  request. The sync worker closes every connection after its answer and ignores it.
"""

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
