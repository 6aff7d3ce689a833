"""Server credentials without servers: where settings read them, how they are written,
what the launcher and the clients make of them, and that no password is printed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from kazoo.security import OPEN_ACL_UNSAFE, READ_ACL_UNSAFE
from pydantic import ValidationError

from devtools.credentials import ensure_credentials
from devtools.infra.errors import InfraError
from devtools.infra.kafka import Kafka
from devtools.infra.redis_server import RedisServer, acl_lines, credentials
from devtools.settings import DevSettings
from phase5_observability.manager import NoGrpcSecret, guards
from shared.coordination import acls
from shared.coordination.election import ELECTION_PATH
from shared.coordination.registry import LIVE_AGENTS
from shared.coordination.serversets import METRICS_PATH
from shared.coordination.services import SERVICES_PATH
from shared.core.config import SecretsDirMissing
from shared.core.redaction import redact
from shared.messaging.clients import kafka_security
from shared.messaging.partitions import PARTITIONS_PATH
from shared.rpc.secret import RequireSecret


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_settings_read_the_files_of_secrets_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "zk_auth").write_text("taskflow:from-file\n")
    (tmp_path / "kafka_sasl_username").write_text("taskflow")
    (tmp_path / "kafka_sasl_password").write_text("from-file")
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    settings = DevSettings()
    assert (settings.zk_auth, settings.kafka_sasl_password) == ("taskflow:from-file", "from-file")


def test_the_environment_wins_over_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "zk_auth").write_text("taskflow:from-file")
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("ZK_AUTH", "taskflow:from-env")
    assert DevSettings().zk_auth == "taskflow:from-env"


def test_a_secrets_dir_that_is_not_there_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path / "missing"))
    with pytest.raises(SecretsDirMissing, match="SECRETS_DIR=.*missing is not a folder"):
        DevSettings()


def test_a_bad_credential_is_named_but_never_quoted() -> None:
    with pytest.raises(ValidationError, match="zk_auth") as bad:
        DevSettings(zk_auth="only-a-secret")
    assert "only-a-secret" not in str(bad.value)
    with pytest.raises(ValidationError, match="go together") as half:
        DevSettings(kafka_sasl_password="lonely-secret")
    assert "lonely-secret" not in str(half.value)


def test_credentials_are_made_once_readable_by_their_owner_only(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    made = ensure_credentials(folder, DevSettings(redis_port=6390))
    assert made == [
        "redis_url",
        "zk_auth",
        "kafka_sasl_username",
        "kafka_sasl_password",
        "grpc_secret",
    ]
    assert mode(folder) == 0o700
    assert all(mode(path) == 0o600 for path in folder.iterdir())
    first = {path.name: path.read_text() for path in folder.iterdir()}
    assert first["redis_url"].startswith("redis://taskflow:")
    assert first["redis_url"].strip().endswith("@127.0.0.1:6390/0")
    assert len(first["grpc_secret"].strip()) == 32
    assert DevSettings(grpc_secret=first["grpc_secret"].strip()).grpc_secret  # metadata-safe

    (folder / "zk_auth").unlink()
    assert ensure_credentials(folder, DevSettings()) == ["zk_auth"]
    again = {path.name: path.read_text() for path in folder.iterdir()}
    assert again["redis_url"] == first["redis_url"]
    assert again["zk_auth"] != first["zk_auth"]


def test_a_grpc_secret_that_metadata_cannot_carry_is_refused_and_not_quoted() -> None:
    with pytest.raises(ValidationError, match="grpc_secret") as bad:
        DevSettings(grpc_secret="two words")
    assert "two words" not in str(bad.value)


def test_a_closed_stack_without_a_grpc_secret_does_not_start_its_task_managers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    with pytest.raises(NoGrpcSecret, match="holds no grpc_secret"):
        guards(DevSettings())
    (tmp_path / "grpc_secret").write_text("s3cret")
    (check,) = guards(DevSettings())
    assert isinstance(check, RequireSecret)
    monkeypatch.delenv("SECRETS_DIR")
    assert guards(DevSettings()) == []  # no SECRETS_DIR, no secret: open, as phase 4


def test_redact_hides_a_password_only() -> None:
    assert redact("redis://taskflow:s3cret@127.0.0.1:6379/0") == (
        "redis://taskflow:***@127.0.0.1:6379/0"
    )
    assert redact("redis://:s3cret@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_the_redis_acl_file_lets_only_the_url_user_in_and_holds_no_password() -> None:
    user, password = credentials("redis://taskflow:p%40ss@127.0.0.1:6379/0")
    assert (user, password) == ("taskflow", "p@ss")
    lines = acl_lines(user, password)
    assert lines[0] == "user default off resetpass -@all"
    assert lines[1].startswith("user taskflow on #") and lines[1].endswith(" ~* &* +@all")
    assert not any("p@ss" in line for line in lines)
    assert acl_lines("", "pw")[0].startswith("user default on #")


def test_the_local_redis_endpoint_carries_the_url_credentials(tmp_path: Path) -> None:
    settings = DevSettings(run_dir=tmp_path, redis_port=6391, redis_url="redis://u:p@elsewhere:1/0")
    assert RedisServer(settings).endpoint == "redis://u:p@127.0.0.1:6391/0"
    assert RedisServer(DevSettings(run_dir=tmp_path)).acl_file is None


def test_kafka_clients_use_sasl_only_when_a_user_is_set() -> None:
    assert kafka_security(DevSettings()) == {}
    secured = DevSettings(kafka_sasl_username="taskflow", kafka_sasl_password="pw")
    assert kafka_security(secured) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "taskflow",
        "sasl_plain_password": "pw",
    }


def test_the_local_kafka_refuses_a_password_it_cannot_quote(tmp_path: Path) -> None:
    settings = DevSettings(
        run_dir=tmp_path, kafka_sasl_username="taskflow", kafka_sasl_password='a"b'
    )
    with pytest.raises(InfraError, match="letters, digits"):
        Kafka(settings).prepare()


def test_every_znode_path_of_taskflow_is_under_a_closed_root() -> None:
    paths = [LIVE_AGENTS, ELECTION_PATH, SERVICES_PATH, METRICS_PATH, PARTITIONS_PATH]
    for path in paths:
        assert any(path == root or path.startswith(f"{root}/") for root in acls.ROOTS), path


def test_zookeeper_clients_authenticate_and_close_only_when_configured() -> None:
    assert acls.zk_security(DevSettings()) == {}
    secured = acls.zk_security(DevSettings(zk_auth="taskflow:pw"))
    assert secured["auth_data"] == [("digest", "taskflow:pw")]
    (owner,) = secured["default_acl"]  # nobody else, not even to read
    assert (owner.id.scheme, owner.acl_list) == ("digest", ["ALL"])


def test_only_the_metrics_tree_is_readable_by_anyone() -> None:
    assert acls.DISCOVERABLE == METRICS_PATH
    for path in ("/", LIVE_AGENTS, ELECTION_PATH, SERVICES_PATH, "/metrics-not", PARTITIONS_PATH):
        assert [entry.id.scheme for entry in acls.taskflow_acl("taskflow:pw", path)] == ["digest"]
    for path in (METRICS_PATH, f"{METRICS_PATH}/agent/agent-1_0000000001"):
        (owner, anyone) = acls.taskflow_acl("taskflow:pw", path)
        assert (owner.id.scheme, anyone.id.id, anyone.acl_list) == ("digest", "anyone", ["READ"])
    assert acls.readable_by_anyone(None) is None  # an open client stays open


def test_an_acl_open_to_writes_is_told_from_one_open_to_reads() -> None:
    assert acls.anyone_may_write(OPEN_ACL_UNSAFE)
    assert not acls.anyone_may_write(acls.taskflow_acl("taskflow:pw", METRICS_PATH))
    assert not acls.anyone_may_write(READ_ACL_UNSAFE)
