"""The command line of a JVM server: capped heap, then a folder of jars or one runnable jar."""

from __future__ import annotations

from pathlib import Path

from shared.devtools.infra.errors import require

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
JAVA_HINT = (
    "install a Java 17 runtime (`make infra-install`, or apt-get install openjdk-17-jre-headless)"
)


def _jvm(heap: str) -> list[str]:
    return [require("java", JAVA_HINT), f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true"]


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
