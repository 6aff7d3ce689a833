"""Exponential backoff with full jitter."""

from __future__ import annotations

import random

import pytest

from shared.core.retries import backoff


@pytest.mark.parametrize(("retry", "bound"), [(1, 1.0), (2, 2.0), (3, 4.0), (8, 128.0), (9, 200.0)])
def test_the_bound_grows_by_the_factor_up_to_the_cap(retry: int, bound: float) -> None:
    assert backoff(retry, base=1.0, factor=2.0, cap=200.0, rand=lambda: 1.0) == bound
    assert backoff(retry, base=1.0, factor=2.0, cap=200.0, rand=lambda: 0.0) == 0.0


def test_the_wait_is_spread_over_the_whole_window() -> None:
    rand = random.Random(7).random
    waits = [backoff(4, base=0.5, factor=3.0, cap=60.0, rand=rand) for _ in range(2000)]
    assert all(0 <= wait <= 13.5 for wait in waits)
    quarters = [sum(1 for w in waits if q * 13.5 / 4 <= w < (q + 1) * 13.5 / 4) for q in range(4)]
    assert min(quarters) > 400  # about 500 each: full jitter, not a fixed delay
