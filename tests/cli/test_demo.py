"""`crossdeploy demo` (what `make demo` runs) deploys the demo app across the two accounts."""

from __future__ import annotations

import io

from rich.console import Console

from cli.demo import run_demo


def test_demo_deploys_and_a_rerun_changes_nothing(prefect_harness: None) -> None:
    out = io.StringIO()
    assert run_demo(Console(file=out, width=200, emoji=False)) == 0
    text = out.getvalue()
    assert "Saved Prefect block alibaba-cloud-credentials/sandbox-app" in text
    assert "add 47.96.10.20/32" in text
    assert "4 changes (3 in account B, 1 in account A)." in text
    assert "shop-web is RUNNING: 2 of 2 instances running" in text
    assert "in cn-hangzhou:demo: RUNNING, 2 instances running" in text
    assert "shop-web already matches the spec; no change order was started." in text
