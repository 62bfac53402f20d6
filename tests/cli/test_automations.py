"""`crossdeploy automations apply` against the session's Prefect server: automations.yaml loads,
each automation is created once and updated in place after, every notification goes to the block
named; a wrong block is refused before anything is written. (tests/flows/test_e2e_prefect.py checks
that the automations then notify, on a server with its trigger services running.)"""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest
import yaml
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from typer.testing import CliRunner

from cli.automations import load
from cli.main import app

REPO = Path(__file__).resolve().parents[2]
FILE = REPO / "automations.yaml"
NAMES = [a["name"] for a in yaml.safe_load(FILE.read_text())["automations"]]


def apply(*notify: str) -> tuple[int, str]:
    args = ["automations", "apply", "--file", str(FILE), *(f"--notify={n}" for n in notify)]
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def test_every_notification_of_the_file_goes_to_the_block_named() -> None:
    block = uuid4()
    automations = load(FILE, block)
    assert (
        [a.name for a in automations]
        == NAMES
        == [
            "crossdeploy-run-failed",
            "crossdeploy-drift-detected",
        ]
    )
    for automation in automations:
        assert automation.actions
        for action in automation.actions:
            assert action.model_dump()["block_document_id"] == block


def test_apply_creates_then_updates_one_of_each(prefect_harness: None) -> None:
    block = CustomWebhookNotificationBlock.model_validate(
        {"name": "alerts", "url": "http://127.0.0.1:9/hook", "json_data": {"text": "{{body}}"}}
    )
    block_id = block.save("crossdeploy-test-alerts", overwrite=True)
    with get_client(sync_client=True) as client:
        for name in NAMES:
            for automation in client.read_automations_by_name(name):
                client.delete_automation(automation.id)
    assert apply("custom-webhook/crossdeploy-test-alerts") == (
        0,
        "crossdeploy-run-failed: created\ncrossdeploy-drift-detected: created\n",
    )
    code, output = apply("custom-webhook/crossdeploy-test-alerts")
    assert (code, output.count("updated")) == (0, 2)
    with get_client(sync_client=True) as client:
        for name in NAMES:
            (found,) = client.read_automations_by_name(name)
            assert [a.model_dump()["block_document_id"] for a in found.actions] == [block_id]


@pytest.mark.parametrize(
    ("notify", "says"),
    [
        ("slack-webhook", "expected <block-type-slug>/<block-name>"),
        ("custom-webhook/no-such-block", "no such block on the server"),
    ],
)
def test_a_wrong_block_is_refused_before_any_write(
    prefect_harness: None, notify: str, says: str
) -> None:
    with get_client(sync_client=True) as client:
        before = len(client.read_automations())
    code, output = apply(notify)
    assert code == 2 and says in output, output
    with get_client(sync_client=True) as client:
        assert len(client.read_automations()) == before
