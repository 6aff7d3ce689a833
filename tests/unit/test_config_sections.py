"""Settings come in sections, one per kind of component, read together in one place."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.core import config
from shared.core.config import KafkaSettings, Section, Settings, TracingSettings, ZooKeeperSettings

SECTIONS = [base for base in Settings.__mro__ if issubclass(base, Section) and base is not Section]
SECTIONS.remove(Settings)


def test_every_field_belongs_to_exactly_one_section() -> None:
    owners: dict[str, list[str]] = {}
    for section in SECTIONS:
        for name in section.__annotations__:
            if name in section.model_fields:
                owners.setdefault(name, []).append(section.__name__)
    assert set(owners) == set(Settings.model_fields), "Settings declares no field of its own"
    assert {name: found for name, found in owners.items() if len(found) > 1} == {}


def test_every_section_of_the_module_is_part_of_settings() -> None:
    defined = {
        value
        for value in vars(config).values()
        if isinstance(value, type) and issubclass(value, Section) and value is not Section
    }
    assert defined - {Settings} == set(SECTIONS)


def test_a_section_reads_the_same_variables_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "10.0.0.1:9092")
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "10.0.0.1:9092"
    assert isinstance(settings, KafkaSettings)  # given wherever the section is asked for


@pytest.mark.parametrize(
    ("section", "values", "variable"),
    [
        (ZooKeeperSettings, {"zk_auth": "no-colon"}, "zk_auth"),
        (KafkaSettings, {"kafka_sasl_username": "taskflow"}, "KAFKA_SASL_PASSWORD"),
        (TracingSettings, {"metrics_bind": "0.0.0.0"}, "metrics_bind"),
    ],
)
def test_a_section_keeps_its_own_checks_in_settings(
    section: type[Section], values: dict[str, str], variable: str
) -> None:
    for model in (section, Settings):
        with pytest.raises(ValidationError, match=variable):
            model(**values)
