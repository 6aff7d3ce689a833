"""ZooKeeper and Kafka jars from Maven Central, resolved once into a cache by ``mvn``.

The small pom next to this module names the official artifacts and their companions.
A resolution ends by writing a marker holding the pom it used, so an edited pom or a new
version resolves again, and an interrupted resolution is never taken for a complete one.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from shared.devtools.infra.errors import InfraError, require
from shared.devtools.infra.process import tail

POM = Path(__file__).with_name("pom.xml")
MVN_HINT = "install Maven (`make infra-install`, or apt-get install maven)"


def lib_dir(cache_dir: Path, profile: str, version: str) -> Path:
    """The folder of jars of ``profile`` (zookeeper or kafka) at ``version``; resolved if needed."""
    home = cache_dir / f"{profile}-{version}"
    marker = home / "resolved-with.pom.xml"
    if not (marker.exists() and marker.read_text() == POM.read_text()):
        _resolve(cache_dir, profile, version, home)
        shutil.copyfile(POM, marker)
    return home / "lib"


def _resolve(cache_dir: Path, profile: str, version: str, home: Path) -> None:
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
        "--activate-profiles",
        profile,
        f"-D{profile}.version={version}",
        f"-Dmaven.repo.local={cache_dir / 'repository'}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={home / 'lib'}",
    ]
    with log.open("wb") as out:
        done = subprocess.run(command, cwd=home, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise InfraError(
            f"Maven could not resolve {profile} {version} from Maven Central; "
            f"last lines of {log}:\n{tail(log)}"
        )
