"""ZooKeeper, Kafka and Zipkin jars from Maven Central, resolved once into a cache by ``mvn``.

The small pom next to this module names the official artifacts and their companions, and
pins the dependency plugin that also copies single jars such as Zipkin's runnable one.
A resolution ends by writing a marker holding what it resolved (the pom, or the jar's
coordinates), so an edited pom or a new version resolves again, and an interrupted
resolution is never taken for a complete one.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from devtools.infra.errors import InfraError, require
from devtools.infra.process import tail

POM = Path(__file__).with_name("pom.xml")
MVN_HINT = "install Maven (`make infra-install`, or apt-get install maven)"


def lib_dir(cache_dir: Path, profile: str, version: str) -> Path:
    """The folder of jars of ``profile`` (zookeeper or kafka) at ``version``; resolved if needed."""
    home = cache_dir / f"{profile}-{version}"
    marker = home / "resolved-with.pom.xml"
    if not (marker.exists() and marker.read_text() == POM.read_text()):
        _mvn(
            cache_dir,
            home,
            f"{profile} {version}",
            "--activate-profiles",
            profile,
            f"-D{profile}.version={version}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={home / 'lib'}",
        )
        shutil.copyfile(POM, marker)
    return home / "lib"


def exec_jar(cache_dir: Path, group: str, artifact: str, version: str) -> Path:
    """The runnable ``<artifact>-<version>-exec.jar`` (classifier exec); copied if needed."""
    coordinates = f"{group}:{artifact}:{version}:jar:exec"
    home = cache_dir / f"{artifact}-{version}"
    marker = home / "resolved.txt"
    if not (marker.exists() and marker.read_text() == coordinates):
        _mvn(
            cache_dir,
            home,
            coordinates,
            "dependency:copy",
            f"-Dartifact={coordinates}",
            f"-DoutputDirectory={home}",
        )
        marker.write_text(coordinates)
    return home / f"{artifact}-{version}-exec.jar"


def _mvn(cache_dir: Path, home: Path, what: str, *args: str) -> None:
    """Run mvn on our pom in an emptied ``home``; a failure quotes its log (``home/mvn.log``)."""
    mvn = require("mvn", MVN_HINT)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    log = home / "mvn.log"
    command = [
        mvn,
        "--batch-mode",
        "--quiet",
        "--file",
        str(POM),
        f"-Dmaven.repo.local={cache_dir / 'repository'}",
        *args,
    ]
    with log.open("wb") as out:
        done = subprocess.run(command, cwd=home, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise InfraError(
            f"Maven could not resolve {what} from Maven Central; last lines of {log}:\n{tail(log)}"
        )
