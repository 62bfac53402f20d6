"""The quota's arithmetic (crossdeploy/quota.py): a Prefect rate limit sized from a quota never
admits more calls than the quota in any window, slack included, and SAE's own quota leaves a
steady fleet close to its bound."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossdeploy.quota import SAE_QUOTA, SLACK_SECONDS, Quota


@given(
    calls=st.integers(min_value=1, max_value=1_000_000),
    window=st.floats(min_value=0.05, max_value=86_400, allow_nan=False),
)
def test_a_limit_sized_from_a_quota_admits_no_more_than_the_quota_in_any_window(
    calls: int, window: float
) -> None:
    """A limit of `burst` slots decaying at `rate` admits at most burst + rate * L calls in any
    L seconds; L is the window plus the slack (a slot taken, then its call on the way)."""
    quota = Quota(calls, window)
    assert 1 <= quota.burst <= max(1, calls // 10)
    assert 1 <= quota.batch <= quota.burst
    if calls > 1:
        bound = quota.burst + quota.decay_per_second * (window + SLACK_SECONDS)
        assert bound <= calls * (1 + 1e-12)


def test_sae_quota_leaves_a_steady_fleet_at_least_93_percent_of_its_bound() -> None:
    """60 calls a minute: a burst of 3 (a no-op re-run's three SAE calls never wait for a slot)
    and 57 slots spread over 61 s: 93.4 % of the bound (it was 6 and 54, 88.5 %)."""
    assert SAE_QUOTA.burst == 3
    steady = SAE_QUOTA.decay_per_second / SAE_QUOTA.calls_per_second
    assert steady == pytest.approx(57 / 61, rel=1e-9)
    assert steady >= 0.93
    assert SAE_QUOTA.apps_in_flight == 10
