"""The command line of a JVM server: capped heap, our log4j2 configuration, a folder of jars."""

from __future__ import annotations

from pathlib import Path

from shared.devtools.infra.errors import require

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
JAVA_HINT = (
    "install a Java 17 runtime (`make infra-install`, or apt-get install openjdk-17-jre-headless)"
)


def java_command(lib: Path, heap: str, main: str, *args: str) -> list[str]:
    """``java -Xmx<heap> ... -cp '<lib>/*' <main> <args>``; the JVM expands the ``*`` itself."""
    java = require("java", JAVA_HINT)
    return [
        java,
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        "-cp",
        f"{lib}/*",
        main,
        *args,
    ]
