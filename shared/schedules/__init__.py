"""Phase 5's schedules: tasks started by the clock, each tick exactly once.

* ``spec.py``: a schedule as an operator submits it, and its policies;
* ``timing.py``: when a schedule's ticks fall (cron in a time zone, or every N seconds);
* ``store.py``: schedules and their ticks log in Redis; ``lua/fire.lua`` fires one tick;
* ``firing.py``: the leader's duty that fires the ticks that are due.
"""
