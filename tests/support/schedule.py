"""Longest test modules first, so the suite's last minutes are not one long module alone.

`make test` runs `pytest -n 4 --dist loadfile --no-loadscope-reorder`: each module stays on one
worker and modules are handed out in collection order. By default pytest-xdist orders them by
their number of tests, which put a 200 s module last; this orders them by the seconds they
took (measured with 4 workers on 2 cores, `--junitxml`, December 2026). A module not listed
counts as short.
"""

from __future__ import annotations

import pytest

MODULE_SECONDS = {
    "test_flow_deploy.py": 280,
    "test_ledger.py": 215,
    "test_e2e_prefect.py": 210,
    "test_sae_pull_e2e.py": 135,
    "test_reliability_crashes.py": 115,
    "test_reliability_faults.py": 100,
    "test_app_lock_renewal.py": 90,
    "test_quota.py": 75,
    "test_webhook.py": 65,
    "test_fleet_deploy.py": 60,
    "test_reliability_input.py": 50,
    "test_app_lock_restart.py": 45,
    "test_ledger_store.py": 45,
    "test_batch_confirmation.py": 35,
    "test_reliability_secrets.py": 35,
    "test_steps_app.py": 35,
    "test_reliability_concurrency.py": 30,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Stable: a module's tests keep their order, and stay together."""
    items.sort(key=lambda item: -MODULE_SECONDS.get(item.path.name, 0))
