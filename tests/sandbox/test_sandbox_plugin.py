"""The sandbox for other people's tests: the pytest plugin and the `alibaba_sandbox()` context
manager, as a user gets them from the installed package.

The README's examples run here as written (extracted from its section, so they cannot drift);
the plugin's scope rules run in a child pytest session, whose processes can be counted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi.utils_models import Config
from pydantic import ValidationError

from sandbox.harness import SandboxCloud, alibaba_sandbox
from sandbox.world import bundled_world_path, load_world
from tests.support.processes import run

README = Path(__file__).parents[2] / "README.md"
SECTION = "## Testing your own code against the sandbox"


def readme_examples() -> dict[str, str]:
    """The section's Python blocks by the file name their first line gives (`# name.py: ...`)."""
    text = README.read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    named = {re.match(r"# (\S+\.py):", block): block for block in blocks}
    assert None not in named, "every example block starts with `# <file>.py: ...`"
    return {match.group(1): block for match, block in named.items() if match is not None}


def answers(endpoint: str) -> bool:
    try:
        return httpx.get(f"{endpoint}/_sandbox/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def caller_uid(cloud: SandboxCloud, account: str) -> str:
    key = cloud.accounts[account]
    config = Config(
        access_key_id=key.access_key_id,
        access_key_secret=key.access_key_secret,
        endpoint=cloud.host,
        protocol="http",
    )
    return str(StsClient(config).get_caller_identity().body.account_id)


# -- the README ---------------------------------------------------------------------------------


def test_readme_test_file_passes_under_pytest(tmp_path: Path) -> None:
    examples = readme_examples()
    [(name, code)] = [(n, c) for n, c in examples.items() if n.startswith("test_")]
    (tmp_path / name).write_text(code)
    result = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", name], tmp_path)
    tests = len(re.findall(r"^def test_", code, flags=re.MULTILINE))
    assert tests >= 4
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"\b{tests} passed\b", result.stdout), result.stdout


def test_readme_script_runs_the_context_manager(tmp_path: Path) -> None:
    [(name, code)] = [(n, c) for n, c in readme_examples().items() if not n.startswith("test_")]
    (tmp_path / name).write_text(code)
    result = run([name], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{load_world().account('registry').uid}\n"


# -- the fixture in this suite (loaded through the entry point, beside tests/conftest.py) --------


def test_fixture_yields_the_demo_world(alibaba_sandbox: SandboxCloud) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", alibaba_sandbox.endpoint)
    world = load_world()
    assert sorted(alibaba_sandbox.accounts) == sorted(a.name for a in world.accounts)
    for account in world.accounts:
        got = alibaba_sandbox.accounts[account.name]
        assert (got.uid, got.access_key_id, got.access_key_secret) == (
            account.uid,
            account.access_keys[0].id,
            account.access_keys[0].secret,
        )
        assert caller_uid(alibaba_sandbox, account.name) == account.uid


# -- scope, markers and reset, in a child session ------------------------------------------------

CHILD_TESTS = '''
import glob
import json
import os
import sys
from pathlib import Path

import pytest
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi.utils_models import Config


def children() -> list[int]:
    """This pytest process's child processes (Linux)."""
    pids = []
    for path in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
        pids += [int(pid) for pid in Path(path).read_text().split()]
    return pids


def record(label, cloud=None):
    entry = {"label": label, "children": len(children())}
    entry["imported"] = "sandbox.world" in sys.modules
    if cloud is not None:
        entry.update(endpoint=cloud.endpoint, app_uid=cloud.accounts["app"].uid)
        entry.update(requests=len(cloud.admin.requests()), timing=cloud.admin.timing())
    with open(os.environ["SEEN"], "a") as seen:
        seen.write(json.dumps(entry) + "\\n")


def test_without_the_fixture():
    record("none")


def test_default(alibaba_sandbox):
    record("default", alibaba_sandbox)


@pytest.mark.alibaba_sandbox_world("worlds/other.yaml")
class TestOtherWorld:
    def test_changes_it(self, alibaba_sandbox):
        alibaba_sandbox.admin.set_timing(change_order_seconds=42)
        key = alibaba_sandbox.accounts["app"]
        config = Config(
            access_key_id=key.access_key_id,
            access_key_secret=key.access_key_secret,
            endpoint=alibaba_sandbox.host,
            protocol="http",
        )
        StsClient(config).get_caller_identity()
        record("other-1", alibaba_sandbox)

    def test_sees_it_reset(self, alibaba_sandbox):
        record("other-2", alibaba_sandbox)


def test_default_again(alibaba_sandbox):
    record("default-again", alibaba_sandbox)


@pytest.mark.alibaba_sandbox_world()
def test_marker_without_a_path(alibaba_sandbox):
    record("never")
'''


def test_one_process_per_world_reset_per_test_none_unless_used(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    (suite / "worlds").mkdir(parents=True)
    world: dict[str, Any] = yaml.safe_load(bundled_world_path().read_text())
    world["accounts"][0]["uid"] = "3333333333333333"
    assert world["accounts"][0]["name"] == "app"
    (suite / "worlds" / "other.yaml").write_text(yaml.safe_dump(world))
    (suite / "test_child.py").write_text(CHILD_TESTS)
    seen_file = tmp_path / "seen.jsonl"

    # From tmp_path, so a marker path taken from the working directory would not be found.
    result = run(["-m", "pytest", "-p", "no:cacheprovider", "suite"], tmp_path, SEEN=str(seen_file))

    output = result.stdout + result.stderr
    assert re.search(r"\b5 passed, 1 error\b", output), output
    assert "alibaba_sandbox_world takes one argument, a world file" in output
    seen = {e["label"]: e for e in map(json.loads, seen_file.read_text().splitlines())}
    assert sorted(seen) == ["default", "default-again", "none", "other-1", "other-2"]
    assert (seen["none"]["children"], seen["none"]["imported"]) == (0, False)
    default, other = seen["default"], seen["other-1"]
    assert default["children"] == 1 and seen["other-1"]["children"] == 2
    assert seen["default-again"]["children"] == 2
    assert seen["default-again"]["endpoint"] == default["endpoint"] != other["endpoint"]
    assert seen["other-2"]["endpoint"] == other["endpoint"]
    assert (default["app_uid"], other["app_uid"]) == ("1111111111111111", "3333333333333333")
    assert other["timing"]["change_order_seconds"] == 42
    assert seen["other-2"]["timing"] == default["timing"]
    assert (other["requests"], seen["other-2"]["requests"]) == (1, 0)
    assert not answers(default["endpoint"]) and not answers(other["endpoint"])


# -- the context manager -------------------------------------------------------------------------


def test_context_manager_serves_a_world_file_and_stops_it(tmp_path: Path) -> None:
    world: dict[str, Any] = yaml.safe_load(bundled_world_path().read_text())
    world["accounts"][1]["uid"] = "4444444444444444"
    path = tmp_path / "world.yaml"
    path.write_text(yaml.safe_dump(world))
    with alibaba_sandbox(str(path)) as cloud:
        assert cloud.world == path.resolve()
        assert caller_uid(cloud, "registry") == "4444444444444444"
        assert answers(cloud.endpoint)
    assert not answers(cloud.endpoint)


def test_context_manager_refuses_a_bad_world_with_its_field_paths(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump({"accounts": [{"name": "app", "uid": "12"}]}))
    with pytest.raises(ValidationError) as bad, alibaba_sandbox(path):
        pass
    assert {"accounts", 0, "uid"} <= {part for error in bad.value.errors() for part in error["loc"]}
