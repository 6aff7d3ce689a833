"""The command line of a JVM server: capped heap, then a folder of jars or one runnable jar."""

from __future__ import annotations

from pathlib import Path

from devtools.infra.errors import require

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
JAVA_HINT = (
    "install a Java 17 runtime (`make infra-install`, or apt-get install openjdk-17-jre-headless)"
)


# The servers' code is compiled by the JVM's quick compiler (C1) only. Here C2, the
# optimizing one, spent more CPU compiling than its code saved: in a one-minute
# benchmark its threads were the broker's largest CPU user, even after a warm-up of 500
# tasks, and the broker took 4.2 to 4.5 ms of CPU per task with it against 1.7 without
# (docs/performance.md). A broker that moves far more messages than this project's
# would want C2 back.
JIT = "-XX:TieredStopAtLevel=1"


def _jvm(heap: str) -> list[str]:
    java = require("java", JAVA_HINT)
    return [java, f"-Xmx{heap}", "-XX:+UseG1GC", JIT, "-Djava.awt.headless=true"]


def java_command(lib: Path, heap: str, main: str, *args: str) -> list[str]:
    """``java -Xmx<heap> ... -cp '<lib>/*' <main> <args>``; the JVM expands the ``*`` itself.

    The jars bring no logging configuration, so ours (log4j2, to the server's log) is given.
    """
    return [
        *_jvm(heap),
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        "-cp",
        f"{lib}/*",
        main,
        *args,
    ]


def jar_command(jar: Path, heap: str, *args: str) -> list[str]:
    """``java -Xmx<heap> ... -jar <jar> <args>``: a runnable jar that configures its own logging."""
    return [*_jvm(heap), "-jar", str(jar), *args]
