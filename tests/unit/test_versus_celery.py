"""The arithmetic of ``benchmarks/versus_celery.py`` and the modules it runs on
(``systems``, ``observing``, ``measuring``): what it counts and divides, not timings."""

from __future__ import annotations

import pytest

from benchmarks.measuring import percentile
from benchmarks.observing import Counters, topic_label
from benchmarks.systems import OFFSETS_TOPIC, port_of
from benchmarks.versus_celery import ratios


def test_percentiles_interpolate_between_ranks() -> None:
    values = [float(n) for n in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0


def test_ports_of_every_kind_of_endpoint() -> None:
    assert port_of("redis://127.0.0.1:6390/0") == 6390
    assert port_of("http://127.0.0.1:9411") == 9411
    assert port_of("127.0.0.1:2181/test-abc") == 2181
    assert port_of("127.0.0.1:9092") == 9092


def test_topics_are_named_without_the_runs_suffix() -> None:
    assert topic_label("dispatch-1a2b3c4d") == "dispatch"
    assert topic_label("dead-letter-1a2b3c4d") == "dead-letter"
    assert topic_label(OFFSETS_TOPIC) == "offset commits"


def test_the_benchmarks_own_requests_are_not_the_systems() -> None:
    before = Counters({"hgetall": 10, "info": 3}, reads=100, own=4, offsets={"status-1": 5})
    after = Counters(
        {"hgetall": 30, "evalsha": 12, "info": 4}, reads=150, own=9, offsets={"status-1": 9}
    )
    done = after.since(before)
    # 5 looks (HGETALLs) and the INFO that read ``before`` were the benchmark's
    assert done["redis_commands"] == {"hgetall": 15, "evalsha": 12}
    assert done["redis_reads"] == 150 - 100 - 1 - 5
    assert done["benchmark_redis_requests"] == 5
    assert done["kafka_messages"] == {"status": 4}


def test_ratios_say_whether_each_target_is_met() -> None:
    def system(tasks_per_s: float, p50: float, p99: float, how: str) -> dict:
        return {
            "burst": {"tasks_per_s": tasks_per_s},
            "sequential": {how: {"p50_ms": p50, "p99_ms": p99}},
        }

    got = ratios(system(120, 30, 90, "API"), system(100, 10, 20, "get()"), "API")
    assert got["throughput"] == {"ratio": 1.2, "target": 1.2, "met": True}
    assert got["p50"]["ratio"] == 3.0 and got["p50"]["met"]
    assert got["p99"]["ratio"] == 4.5 and not got["p99"]["met"]
