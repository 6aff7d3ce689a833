"""Command line: ``python -m devtools.infra install|up|down|status [--services ...]``."""

from __future__ import annotations

from pathlib import Path

import click

from devtools.infra.catalog import ALL, select
from devtools.infra.errors import InfraError
from devtools.infra.launcher import Launcher
from devtools.settings import DevSettings, get_dev_settings
from shared.messaging.topics import ensure_topics

services_option = click.option(
    "--services", default=ALL, show_default=True, help="comma-separated servers to act on"
)
run_dir_option = click.option(
    "--run-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="folder for pid files, logs and data [default: RUN_DIR]",
)


def _settings(run_dir: Path | None) -> DevSettings:
    settings = get_dev_settings()
    if run_dir is None:
        return settings
    return settings.model_copy(update={"run_dir": run_dir.resolve()})


@click.group()
def cli() -> None:
    """Local Redis, ZooKeeper, Kafka and Prometheus for development and demos."""


@cli.command()
@services_option
@run_dir_option
def install(services: str, run_dir: Path | None) -> None:
    """Resolve the ZooKeeper and Kafka jars into the cache; check the other programs."""
    settings = _settings(run_dir)
    Launcher(settings).install(select(services, settings))


@cli.command()
@services_option
@run_dir_option
def up(services: str, run_dir: Path | None) -> None:
    """Start the servers that are not running yet, and create the Kafka topics."""
    settings = _settings(run_dir)
    chosen = select(services, settings)
    Launcher(settings).up(chosen)
    kafka = [service for service in chosen if service.name == "kafka"]
    if kafka:
        created = ensure_topics(kafka[0].endpoint, settings=settings)
        click.echo(f"kafka: topics created: {', '.join(created) or 'none (all exist)'}")


@cli.command()
@services_option
@run_dir_option
def down(services: str, run_dir: Path | None) -> None:
    """Stop the servers (SIGTERM, then SIGKILL after INFRA_STOP_GRACE seconds)."""
    settings = _settings(run_dir)
    Launcher(settings).down(select(services, settings))


@cli.command()
@services_option
@run_dir_option
def status(services: str, run_dir: Path | None) -> None:
    """Which servers run, on which ports, with which pids."""
    settings = _settings(run_dir)
    for state in Launcher(settings).status(select(services, settings)):
        click.echo(state.describe())


def main() -> None:
    """Run the CLI; a launcher error ends it with its message and exit status 1."""
    try:
        cli()
    except InfraError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
