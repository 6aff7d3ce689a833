"""Apache Kafka in KRaft mode (one combined broker and controller), from Maven Central."""

from __future__ import annotations

import base64
import contextlib
import subprocess
import uuid
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import TopicAlreadyExistsError

from shared.devtools.infra import maven
from shared.devtools.infra.errors import InfraError
from shared.devtools.infra.jvm import java_command
from shared.devtools.infra.ports import LOOPBACK
from shared.devtools.infra.process import tail
from shared.devtools.infra.service import Service

TEMPLATE = Path(__file__).with_name("kafka.properties")
MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
# A topic of the launcher's own, so the ready check never touches the project's topics.
CHECK_TOPIC = "_infra-check"
CHECK_TIMEOUT_MS = 5000


def cluster_id() -> str:
    """A new KRaft cluster id: 16 random bytes, URL-safe base64 without padding (as Kafka's)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def ping(bootstrap: str) -> None:
    """Raise unless a metadata request and a produce/consume round trip both succeed."""
    with KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="infra-check",
        request_timeout_ms=CHECK_TIMEOUT_MS,
        bootstrap_timeout_ms=CHECK_TIMEOUT_MS,
    ) as admin:
        admin.describe_cluster()
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics({CHECK_TOPIC: {"num_partitions": 1, "replication_factor": 1}})
    _round_trip(bootstrap)


def _round_trip(bootstrap: str) -> None:
    token = uuid.uuid4().hex.encode()
    with KafkaProducer(bootstrap_servers=bootstrap, acks="all") as producer:
        sent = producer.send(CHECK_TOPIC, token).get(timeout=CHECK_TIMEOUT_MS / 1000)
    with KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False) as consumer:
        partition = TopicPartition(CHECK_TOPIC, sent.partition)
        consumer.assign([partition])
        consumer.seek(partition, sent.offset)
        batches = consumer.poll(timeout_ms=CHECK_TIMEOUT_MS, max_records=1)
    values = [record.value for records in batches.values() for record in records]
    if values != [token]:
        raise InfraError(f"Kafka round trip on {CHECK_TOPIC} read {values}, not what it wrote")


class Kafka(Service):
    name = "kafka"
    port_fields = ("kafka_port", "kafka_controller_port")

    @property
    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def config(self) -> Path:
        return self.home / "kafka.properties"

    def lib(self) -> Path:
        s = self.settings
        return maven.lib_dir(s.maven_cache_dir, "kafka", s.kafka_version)

    def install(self) -> None:
        self.lib()

    def prepare(self) -> None:
        super().prepare()
        self.write_config(
            TEMPLATE,
            self.config,
            data=self.data,
            port=self.port,
            controller_port=self.settings.kafka_controller_port,
        )
        if not (self.data / "meta.properties").exists():
            self._format_storage()

    def _format_storage(self) -> None:
        """KRaft needs its log folder formatted with a cluster id once, before the first start."""
        # "--cluster-id=<id>" in one word: an id may start with "-", which argparse would
        # otherwise read as an option.
        args = ["format", f"--cluster-id={cluster_id()}", "--config", str(self.config)]
        command = java_command(self.lib(), self.settings.kafka_heap, STORAGE_TOOL, *args)
        with self.log.open("ab") as out:
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise InfraError(
                f"formatting Kafka storage failed; last lines of {self.log}:\n{tail(self.log)}"
            )

    def command(self) -> list[str]:
        return java_command(self.lib(), self.settings.kafka_heap, MAIN, str(self.config))

    def check(self) -> None:
        ping(self.endpoint)
