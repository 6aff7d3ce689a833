"""Which address a call tries first, given which ones failed lately (``SetAside``)."""

from __future__ import annotations

from shared.rpc.client import SetAside


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_failed_address_goes_last_and_is_probed_once_after_its_pause() -> None:
    clock = Clock()
    aside = SetAside(first_pause=1, max_pause=4, clock=clock)
    aside.failed("a")
    assert aside.order(["a", "b", "c"]) == ["b", "c", "a"]
    clock.now = 1.0
    assert aside.order(["a", "b", "c"]) == ["a", "b", "c"]  # the probe
    assert aside.order(["a", "b", "c"]) == ["b", "c", "a"]  # one probe, not one per call


def test_the_pause_doubles_up_to_its_cap_and_an_answer_clears_it() -> None:
    clock = Clock()
    aside = SetAside(first_pause=1, max_pause=4, clock=clock)
    probes = []
    for _ in range(5):
        aside.failed("a")
        start = clock.now
        while aside.order(["a", "b"])[0] != "a":
            clock.now += 0.5
        probes.append(clock.now - start)
    assert probes == [1, 2, 4, 4, 4]
    aside.answered("a")
    assert aside.order(["a", "b"]) == ["a", "b"]


def test_every_address_is_still_tried_when_all_are_set_aside() -> None:
    aside = SetAside(clock=Clock())
    aside.failed("a")
    aside.failed("b")
    assert sorted(aside.order(["a", "b"])) == ["a", "b"]


def test_an_address_gone_from_the_directory_is_forgotten() -> None:
    clock = Clock()
    aside = SetAside(first_pause=1, clock=clock)
    aside.failed("a")
    aside.order(["b"])  # "a" left ZooKeeper; a new instance may come back on its address
    assert aside.order(["a", "b"]) == ["a", "b"]
