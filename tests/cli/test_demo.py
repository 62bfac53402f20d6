"""`crossdeploy demo` (what `make demo` runs) deploys the demo app across the two accounts."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from cli.demo import run_demo


@pytest.fixture(scope="module")
def demo_output(prefect_harness: None) -> str:
    """What one run of the demo printed (it must succeed)."""
    out = io.StringIO()
    assert run_demo(Console(file=out, width=200, emoji=False)) == 0
    return out.getvalue()


def test_demo_deploys_and_a_rerun_changes_nothing(demo_output: str) -> None:
    text = demo_output
    assert "Saved Prefect block alibaba-cloud-credentials/sandbox-app" in text
    assert "add 47.96.10.20/32" in text
    assert "4 changes (3 in account B, 1 in account A)." in text
    assert "shop-web is RUNNING: 2 of 2 instances running" in text
    assert "in cn-hangzhou:demo: RUNNING, 2 instances running" in text
    assert "shop-web already matches the spec; no change order was started." in text


def test_the_demo_ends_with_what_to_try_next_by_hand(demo_output: str) -> None:
    """Its sandbox ends with it, so it says so and points to the README's walkthrough."""
    last = demo_output.rstrip().splitlines()[-7:]
    assert last[0].startswith("Done. This demo's sandbox cloud and temporary Prefect server stop")
    assert 'Try it by hand next (README.md, "Try it by hand"):' in last
    text = "\n".join(last)
    for command in ("source .venv/bin/activate", "crossdeploy sandbox serve", "crossdeploy plan"):
        assert command in text
    assert "teardown" in text and "plan it again" in text
