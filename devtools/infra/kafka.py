"""Apache Kafka in KRaft mode (one combined broker and controller), from Maven Central.

With ``KAFKA_SASL_USERNAME`` set, the client listener takes SASL/SCRAM only: the user is
added to the cluster's metadata when the storage is formatted (KRaft keeps SCRAM users
there), so a fresh data folder is needed, and one formatted without that user is refused
with a message rather than started with nobody able to log in. The controller listener
then takes SASL/PLAIN with a secret made at each start: open, it would let anyone on
the machine change the broker's configuration (a new listener without SASL, say).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import subprocess
import uuid
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import TopicAlreadyExistsError

from devtools.infra import maven
from devtools.infra.errors import InfraError
from devtools.infra.jvm import java_command
from devtools.infra.ports import LOOPBACK
from devtools.infra.private import UMASK, open_private, write_private
from devtools.infra.process import tail
from devtools.infra.service import Service
from devtools.settings import DevSettings
from shared.messaging.clients import kafka_security

TEMPLATE = Path(__file__).with_name("kafka.properties")
MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
# A topic of the launcher's own, so the ready check never touches the project's topics.
CHECK_TOPIC = "_infra-check"
CHECK_TIMEOUT_MS = 5000
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"
PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
# What a user name or password can be here: it goes into quoted JAAS strings and into
# the storage tool's ``name=...,password=...`` list.
PLAIN_WORD = re.compile(r"[A-Za-z0-9._~-]+")


def cluster_id() -> str:
    """A new KRaft cluster id: 16 random bytes, URL-safe base64 without padding (as Kafka's)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def ping(bootstrap: str, security: dict[str, Any] | None = None) -> None:
    """Raise unless a metadata request and a produce/consume round trip both succeed;
    ``security``: the clients' SASL arguments (``kafka_security``)."""
    security = security or {}
    with KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="infra-check",
        request_timeout_ms=CHECK_TIMEOUT_MS,
        bootstrap_timeout_ms=CHECK_TIMEOUT_MS,
        **security,
    ) as admin:
        admin.describe_cluster()
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics({CHECK_TOPIC: {"num_partitions": 1, "replication_factor": 1}})
    _round_trip(bootstrap, security)


def _round_trip(bootstrap: str, security: dict[str, Any]) -> None:
    token = uuid.uuid4().hex.encode()
    with KafkaProducer(bootstrap_servers=bootstrap, acks="all", **security) as producer:
        sent = producer.send(CHECK_TOPIC, token).get(timeout=CHECK_TIMEOUT_MS / 1000)
    with KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **security
    ) as consumer:
        partition = TopicPartition(CHECK_TOPIC, sent.partition)
        consumer.assign([partition])
        consumer.seek(partition, sent.offset)
        batches = consumer.poll(timeout_ms=CHECK_TIMEOUT_MS, max_records=1)
    values = [record.value for records in batches.values() for record in records]
    if values != [token]:
        raise InfraError(f"Kafka round trip on {CHECK_TOPIC} read {values}, not what it wrote")


def sasl_properties(settings: DevSettings, controller_secret: str) -> str:
    """The broker's SASL lines: SCRAM for clients, PLAIN with ``controller_secret`` for
    the controller listener (which cannot read SCRAM users: they live in its metadata)."""
    mechanism = settings.kafka_sasl_mechanism.value
    user, password = settings.kafka_sasl_username, settings.kafka_sasl_password
    client = f'{SCRAM_LOGIN} required username="{user}" password="{password}";'
    controller = (
        f'{PLAIN_LOGIN} required username="controller" password="{controller_secret}" '
        f'user_controller="{controller_secret}";'
    )
    return "\n".join(
        [
            f"sasl.enabled.mechanisms={mechanism}",
            f"sasl.mechanism.inter.broker.protocol={mechanism}",
            f"listener.name.sasl_plaintext.{mechanism.lower()}.sasl.jaas.config={client}",
            "sasl.mechanism.controller.protocol=PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            f"listener.name.controller.plain.sasl.jaas.config={controller}",
        ]
    )


class Kafka(Service):
    name = "kafka"
    port_fields = ("kafka_port", "kafka_controller_port")

    @property
    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def config(self) -> Path:
        return self.home / "kafka.properties"

    @property
    def sasl(self) -> bool:
        return bool(self.settings.kafka_sasl_username)

    @property
    def scram_user(self) -> str:
        """``SCRAM-SHA-256 taskflow``: the SCRAM user this data folder was formatted with."""
        return f"{self.settings.kafka_sasl_mechanism.value} {self.settings.kafka_sasl_username}"

    @property
    def scram_marker(self) -> Path:
        return self.home / "scram-user"

    def lib(self) -> Path:
        s = self.settings
        return maven.lib_dir(s.maven_cache_dir, "kafka", s.kafka_version)

    def install(self) -> None:
        self.lib()

    def prepare(self) -> None:
        super().prepare()
        if self.sasl:
            self._check_words()
        sasl = sasl_properties(self.settings, secrets.token_urlsafe(24)) if self.sasl else ""
        self.write_config(
            TEMPLATE,
            self.config,
            data=self.data,
            port=self.port,
            controller_port=self.settings.kafka_controller_port,
            listener="SASL_PLAINTEXT" if self.sasl else "PLAINTEXT",
            controller_protocol="SASL_PLAINTEXT" if self.sasl else "PLAINTEXT",
            sasl=sasl,
        )
        if not (self.data / "meta.properties").exists():
            self._format_storage()
        elif self.sasl and self._formatted_user() != self.scram_user:
            s = self.settings
            raise InfraError(
                f"kafka: the data in {self.data} was formatted without the "
                f"{s.kafka_sasl_mechanism.value} user {s.kafka_sasl_username!r}, so nobody "
                f"could log in; use another run dir (--run-dir, RUN_DIR) or remove {self.data}"
            )

    def _check_words(self) -> None:
        s = self.settings
        for field, value in (("user", s.kafka_sasl_username), ("password", s.kafka_sasl_password)):
            if not PLAIN_WORD.fullmatch(value):
                raise InfraError(
                    f"kafka: the local launcher takes a SASL {field} of letters, digits and "
                    "'._~-' only"
                )

    def _formatted_user(self) -> str:
        try:
            return self.scram_marker.read_text().strip()
        except OSError:
            return ""

    def _format_storage(self) -> None:
        """KRaft needs its log folder formatted with a cluster id once, before the first start;
        the SCRAM user goes in then, from a file (``@file``), not on the command line."""
        # "--cluster-id=<id>" in one word: an id may start with "-", which argparse would
        # otherwise read as an option.
        args = ["format", f"--cluster-id={cluster_id()}", "--config", str(self.config)]
        args_file = self.home / "format.args"
        self.scram_marker.unlink(missing_ok=True)
        if self.sasl:
            s = self.settings
            user = f"name={s.kafka_sasl_username},password={s.kafka_sasl_password}"
            write_private(args_file, f"--add-scram\n{s.kafka_sasl_mechanism.value}=[{user}]\n")
            args.append(f"@{args_file}")
        command = java_command(self.lib(), self.settings.kafka_heap, STORAGE_TOOL, *args)
        try:
            with os.fdopen(open_private(self.log, os.O_WRONLY | os.O_APPEND), "ab") as out:
                done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, umask=UMASK)
        finally:
            args_file.unlink(missing_ok=True)
        if done.returncode != 0:
            raise InfraError(
                f"formatting Kafka storage failed; last lines of {self.log}:\n{tail(self.log)}"
            )
        if self.sasl:
            write_private(self.scram_marker, f"{self.scram_user}\n")

    def command(self) -> list[str]:
        return java_command(self.lib(), self.settings.kafka_heap, MAIN, str(self.config))

    def check(self) -> None:
        ping(self.endpoint, kafka_security(self.settings))
