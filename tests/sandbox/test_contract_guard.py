"""The contract guard fails a test whose requests the contract stretched, unless it is marked.

A child pytest session with the guard (`-p tests.support.contract_guard`) runs three tests against a
sandbox from `sandbox.harness`: one sends a parameter STS's contract does not know, one does the
same marked `contract_breaches`, one sends nothing. Only the first may fail, in its teardown,
naming the action and the parameter.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.processes import run

CHILD_TESTS = """
import pytest
from alibabacloud_sts20150401.client import Client
from alibabacloud_tea_openapi.utils_models import Config, GlobalParameters

from sandbox.harness import alibaba_sandbox


def ask_with_an_unknown_parameter():
    with alibaba_sandbox() as cloud:
        app = cloud.accounts["app"]
        config = Config(
            access_key_id=app.access_key_id,
            access_key_secret=app.access_key_secret,
            endpoint=cloud.host,
            protocol="http",
            region_id="cn-hangzhou",
            global_parameters=GlobalParameters(queries={"Shoe": "42"}),
        )
        assert Client(config).get_caller_identity().body.account_id == app.uid


def test_unmarked():
    ask_with_an_unknown_parameter()


@pytest.mark.contract_breaches
def test_marked():
    ask_with_an_unknown_parameter()


def test_clean():
    pass
"""

REPO = Path(__file__).resolve().parents[2]


def test_an_unmarked_test_with_an_ignored_parameter_fails_in_teardown(tmp_path: Path) -> None:
    (tmp_path / "test_child.py").write_text(CHILD_TESTS)
    child = run(
        ["-m", "pytest", "-p", "tests.support.contract_guard", "-q", "-rE", "test_child.py"],
        tmp_path,
        PYTHONPATH=str(REPO),
    )
    out = child.stdout + child.stderr
    assert child.returncode == 1, out
    assert "3 passed, 1 error" in out, out
    assert "ERROR test_child.py::test_unmarked" in out, out
    assert "sts:GetCallerIdentity ignored Shoe" in out, out
