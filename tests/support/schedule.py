"""Longest test modules first, so the suite's last minutes are not one long module alone.

`make test` runs `pytest -n 4 --dist loadfile --no-loadscope-reorder`: each module stays on one
worker and modules are handed out in collection order. By default pytest-xdist orders them by
their number of tests, which put a 200 s module last; this orders them by the seconds they
took (measured with 4 workers on 2 cores, `--junitxml`, December 2026). A module not listed
counts as short. Modules are named by their path under tests/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

MODULE_SECONDS = {
    "flows/test_flow_deploy.py": 280,
    "coordination/test_ledger.py": 215,
    "flows/test_e2e_prefect.py": 210,
    "flows/test_fleet_workers.py": 160,
    "sandbox/test_sae_pull_e2e.py": 135,
    "reliability/test_reliability_crashes.py": 115,
    "cli/test_cli_interrupt.py": 110,
    "reliability/test_reliability_faults.py": 100,
    "coordination/test_app_lock_renewal.py": 90,
    "coordination/test_app_lock_busy_renewal.py": 85,
    "coordination/test_quota.py": 75,
    "cli/test_webhook.py": 65,
    "flows/test_least_privilege.py": 75,
    "flows/test_fleet_deploy.py": 60,
    "cli/test_readme_examples.py": 60,
    "flows/test_deploy_credential_sources.py": 55,
    "reliability/test_reliability_input.py": 50,
    "coordination/test_app_lock_restart.py": 45,
    "coordination/test_app_lock_dead_holder.py": 25,
    "coordination/test_ledger_store.py": 45,
    "flows/test_batch_confirmation.py": 35,
    "reliability/test_reliability_secrets.py": 35,
    "steps/test_steps_app.py": 35,
    "reliability/test_reliability_concurrency.py": 30,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Stable: a module's tests keep their order, and stay together."""
    items.sort(key=lambda item: -MODULE_SECONDS.get(_module(item), 0))


def _module(item: pytest.Item) -> str:
    """The item's module as MODULE_SECONDS names it: its path under tests/."""
    path = item.path.resolve()
    return path.relative_to(TESTS).as_posix() if path.is_relative_to(TESTS) else path.name
