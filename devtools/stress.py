"""``make test-stress``: run a command while busy processes hold every core.

``python -m devtools.stress [--busy N] -- COMMAND...``

A CI machine is often loaded by other jobs. A test that races the system it checks (an
assertion on a state the system only passes through, a sleep that stands for "long
enough") passes on an idle machine and fails there, one run in a few. Here every process
of the run, servers included, gets about half of a core, so such a test fails far more
often, and near the change that made it. The busy processes run at the same priority as
the tests and end with the command, whatever way it ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import click

SPIN = "while True: pass"


# --8<-- [start:main]
@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--busy", default=os.cpu_count() or 2, show_default=True, help="Busy processes.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def main(busy: int, command: tuple[str, ...]) -> None:
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(busy)]
    click.echo(f"stress: {busy} busy processes; running {' '.join(command)}", err=True)
    # SIGTERM ends this process like Ctrl-C, so the spinners are stopped below either way
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        code = subprocess.call(command)
    except KeyboardInterrupt:
        code = 130
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    sys.exit(code)


# --8<-- [end:main]


if __name__ == "__main__":
    main()
