"""The Prefect way, end to end, with real parts and nothing mocked.

One module-scoped stack, started the way an operator would: `prefect server start` (SQLite in a
temporary PREFECT_HOME), `prefect work-pool create crossdeploy --type process`, `prefect
--no-prompt deploy --all` from the repository root (this repository's prefect.yaml), `prefect
worker start --pool crossdeploy`, a sandbox cloud with the demo world (1-second change orders)
whose credential blocks are saved to that server, and `crossdeploy webhook serve`. Then:

  (a) the `cross-account-deploy` deployment is run through the API (as the UI's Run button does)
      and the app is RUNNING in the sandbox;
  (b) two ACR push notifications POSTed to the webhook bridge in quick succession, the newer
      tag's first (1.3, then 1.2: ACR pushed 1.2 earlier), make the deployment trigger start two
      `deploy-on-image-push` runs; they run one at a time (the deployment's concurrency limit),
      and the 1.2 run is skipped because the app already runs the later push, so :1.3 runs;
  (c) headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) opens the Prefect UI,
      starts a custom run of `cross-account-deploy` from its form with replicas 3, waits for it
      to complete and screenshots the flow run's Artifacts tab (the plan and progress);
  (d) the scheduled `reconcile` deployment, run once after a deploy of 3 replicas, reports the
      drift against its default spec (replicas 3 live, 2 wanted) in its `reconcile-drift`
      artifact.

Each test sets up the state it checks, so one failing test never fails the next.

Every process started here runs in its own process group and carries a marker in its
environment; at the end the groups are stopped and anything left with the marker (a flow run the
worker started in a session of its own) is killed by pid. The screenshots (ui-run.png: the flow
run's Artifacts tab; ui-plan.png: the rendered plan artifact) are saved in the test's temporary
directory and, with CROSSDEPLOY_SAVE_SCREENSHOTS=1, copied to docs/screenshots/.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

import httpx
import pytest
import yaml
from alibabacloud_sae20190506 import models as sae_models
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterName,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun
from prefect.events import Event
from prefect.settings import PREFECT_API_URL, temporary_settings

from cli.sandbox_blocks import save_sandbox_blocks
from sandbox.testing import SandboxProcess
from tests.support.clients import SdkFactory
from tests.support.deploy_support import open_sae_quota
from tests.support.processes import (
    REPO,
    LoggedProcess,
    free_port,
    kill_marked,
    succeeded,
    wait_until,
)
from tests.support.worlds import demo_world_data, write_world

pytestmark = pytest.mark.timeout(240)

BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_ENV = "CROSSDEPLOY_SAVE_SCREENSHOTS"
MARKER = "CROSSDEPLOY_E2E_RUN"
TOKEN = "e2e-webhook-token"
FLOW = "cross-account-deploy"
DEMO_SPEC: dict[str, Any] = yaml.safe_load(
    (REPO / "crossdeploy" / "specs" / "demo.yaml").read_text()
)
IMAGE_REPO = "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web"
PUSHED = {"1.2": "sha256:" + "e" * 64, "1.3": "sha256:" + "f" * 64}


# -- processes ---------------------------------------------------------------------------------


# -- the stack ---------------------------------------------------------------------------------


@dataclass
class Stack:
    api_url: str
    ui_url: str
    webhook_url: str
    sandbox: SandboxProcess
    tmp: Path
    procs: dict[str, LoggedProcess] = field(default_factory=dict)

    @property
    def sdk(self) -> SdkFactory:
        return SdkFactory(self.sandbox.endpoint)

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.procs.values())

    @contextmanager
    def api(self) -> Iterator[None]:
        """This process's Prefect client settings pointed at the stack's server."""
        with temporary_settings(updates={PREFECT_API_URL: self.api_url}):
            yield

    def deployment_id(self, name: str) -> UUID:
        with self.api(), get_client(sync_client=True) as client:
            return client.read_deployment_by_name(name).id

    def flow_run(self, run_id: UUID) -> FlowRun:
        with self.api(), get_client(sync_client=True) as client:
            return client.read_flow_run(run_id)

    def wait_final(self, run_id: UUID, timeout: float = 90) -> FlowRun:
        def final() -> FlowRun | None:
            run = self.flow_run(run_id)
            return run if run.state is not None and run.state.is_final() else None

        return wait_until(f"flow run {run_id} to finish", final, timeout, self.logs())

    def artifacts(self, run_id: UUID) -> list[Any]:
        with self.api(), get_client(sync_client=True) as client:
            flt = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
            return list(client.read_artifacts(artifact_filter=flt))


def _prefect_env(home: Path, api_url: str, marker: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            MARKER: marker,
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_API_URL": api_url,
            "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
            # No scheduled `reconcile` runs while the test runs (it runs that deployment itself).
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
            # As the README asks of a server: concurrency leases (the app lock) kept on disk.
            "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": (
                "prefect.server.concurrency.lease_storage.filesystem"
            ),
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            # A run queued behind the image-push deployment's concurrency limit tries again in
            # 1 s, not 30 (the default).
            "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("e2e-prefect")
    logs = tmp / "logs"
    logs.mkdir()
    marker = uuid.uuid4().hex
    port = free_port()
    ui_url = f"http://127.0.0.1:{port}"
    api_url = f"{ui_url}/api"
    env = _prefect_env(tmp / "prefect-home", api_url, marker)

    world = demo_world_data(change_order_seconds=1)
    (registry, *_) = world["regions"]["cn-hangzhou"]["acr_instances"]
    registry["repos"]["shop/web"]["tags"].update(PUSHED)  # pushed after 1.0 and 1.1, in order
    world_path = write_world(world, tmp)

    procs: dict[str, LoggedProcess] = {}
    sandbox = SandboxProcess(world=world_path, state=tmp / "sandbox.sqlite")
    try:
        procs["server"] = LoggedProcess(
            "server",
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env,
            logs,
        )
        sandbox.start()

        def healthy() -> bool:
            assert procs["server"].popen.poll() is None, procs["server"].tail()
            try:
                return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until("the Prefect server's /api/health", healthy, 90, procs["server"].tail())

        prefect = str(BIN / "prefect")
        succeeded([prefect, "work-pool", "create", "crossdeploy", "--type", "process"], env)
        succeeded([prefect, "--no-prompt", "deploy", "--all"], env)
        procs["worker"] = LoggedProcess(
            "worker", [prefect, "worker", "start", "--pool", "crossdeploy"], env, logs
        )
        procs["webhook"] = LoggedProcess(
            "webhook",
            [str(BIN / "crossdeploy"), "webhook", "serve", "--port", "0", "--token", TOKEN],
            env,
            logs,
        )
        webhook_url = procs["webhook"].wait_for_line("webhook listening on", 60)
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            save_sandbox_blocks(sandbox.url, world_path)
            open_sae_quota()  # the sandbox's minutes are short: its operator's SAE limits
        yield Stack(api_url, ui_url, webhook_url, sandbox, tmp, procs)
    finally:
        for name in ("webhook", "worker", "server"):
            if name in procs:
                procs[name].stop()
        sandbox.stop()
        kill_marked(MARKER, marker)


# -- the sandbox's view of the app -------------------------------------------------------------


def app_config(stack: Stack) -> Any:
    sae = stack.sdk.sae()
    apps = sae.list_applications(sae_models.ListApplicationsRequest(app_name="shop-web"))
    matches = [a for a in apps.body.data.applications if a.app_name == "shop-web"]
    assert len(matches) == 1, f"expected one shop-web app, found {len(matches)}"
    app_id = matches[0].app_id
    status = sae.describe_application_status(
        sae_models.DescribeApplicationStatusRequest(app_id=app_id)
    ).body.data
    config = sae.describe_application_config(
        sae_models.DescribeApplicationConfigRequest(app_id=app_id)
    ).body.data
    return status, config


def assert_completed(stack: Stack, run: FlowRun) -> None:
    assert run.state is not None
    assert run.state.is_completed(), (
        f"flow run {run.name} ended {run.state.name}: {run.state.message}\n{stack.logs()}"
    )


# -- the tests ---------------------------------------------------------------------------------


def test_prefect_yaml_carries_the_demo_spec_and_the_image_push_trigger() -> None:
    """The form's defaults are the demo spec (crossdeploy/specs/demo.yaml), and the trigger
    passes the pushed tag."""
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in config["deployments"]}
    assert set(deployments) == {
        "cross-account-deploy",
        "reconcile",
        "deploy-on-image-push",
        "fleet-app",
    }
    assert deployments["cross-account-deploy"]["parameters"]["spec"] == DEMO_SPEC
    assert deployments["reconcile"]["parameters"]["specs"] == [DEMO_SPEC]
    assert deployments["reconcile"]["schedules"][0]["cron"] == "*/30 * * * *"
    push = deployments["deploy-on-image-push"]
    assert push["parameters"] == {"spec": DEMO_SPEC, "skip_older": True}
    assert push["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
    (trigger,) = push["triggers"]
    assert trigger["match"] == {"prefect.resource.id": "acr.repo.cn-hangzhou.shop/web"}
    assert trigger["expect"] == ["acr.image.pushed"]
    assert trigger["parameters"] == {"image_tag": "{{ event.payload.tag }}"}
    assert {d["work_pool"]["name"] for d in deployments.values()} == {"crossdeploy"}


def test_deployed_form_schema_has_titles_and_descriptions(stack: Stack) -> None:
    with stack.api(), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"{FLOW}/cross-account-deploy")
    schema = deployment.parameter_openapi_schema or {}
    assert schema["properties"]["spec"]["description"]
    assert schema["properties"]["image_tag"]["description"]
    definitions = schema["definitions"]
    for name, model in definitions.items():
        for prop, spec in model["properties"].items():
            assert spec.get("description"), f"{name}.{prop} has no description"
    assert definitions["AppSpec"]["properties"]["cpu"]["title"] == "CPU (millicores)"
    assert definitions["ImageSpec"]["properties"]["url"]["title"] == "Image URL"
    assert deployment.parameters["spec"] == DEMO_SPEC


def test_a_run_of_the_deployment_through_the_api_deploys_the_app(stack: Stack) -> None:
    """What the UI's Run button does: create a flow run from the deployment with parameters."""
    with stack.api(), get_client(sync_client=True) as client:
        created = client.create_flow_run_from_deployment(
            stack.deployment_id(f"{FLOW}/cross-account-deploy"),
            parameters={"spec": DEMO_SPEC},
        )
    run = stack.wait_final(created.id)
    assert_completed(stack, run)
    status, config = app_config(stack)
    assert status.current_status == "RUNNING"
    assert (config.image_url, config.replicas) == (f"{IMAGE_REPO}:1.1", 2)
    keys = {a.key for a in stack.artifacts(created.id)}
    assert "plan-shop-web" in keys


def _push_payload(tag: str) -> dict[str, Any]:
    return {
        "push_data": {
            "digest": PUSHED[tag],
            "pushed_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            "tag": tag,
        },
        "repository": {
            "date_created": "2026-01-01 00:00:00",
            "name": "web",
            "namespace": "shop",
            "region": "cn-hangzhou",
            "repo_authentication_type": "NO_CERTIFIED",
            "repo_full_name": "shop/web",
            "repo_origin_type": "NO_CERTIFIED",
            "repo_type": "PRIVATE",
        },
    }


def _notify(stack: Stack, tag: str) -> None:
    response = httpx.post(
        f"{stack.webhook_url}/acr", params={"token": TOKEN}, json=_push_payload(tag), timeout=30
    )
    assert response.status_code == 202, response.text
    assert response.json()["resource_id"] == "acr.repo.cn-hangzhou.shop/web"


def _run_logs(stack: Stack, run_id: UUID) -> list[str]:
    with stack.api(), get_client(sync_client=True) as client:
        flt = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
        return [log.message for log in client.read_logs(log_filter=flt)]


def test_b_two_acr_pushes_in_quick_succession_land_the_newer_tag(stack: Stack) -> None:
    """ACR pushed 1.2, then 1.3; their notifications reach the bridge the other way round, a
    moment apart (the second while the first run is running). Each starts a run of
    `deploy-on-image-push`; the second waits for the first (the deployment's concurrency limit
    of 1, ENQUEUE) and then skips 1.2, saying so, because the app runs 1.3, which ACR says was
    pushed later. 1.3 is what runs."""
    push_id = stack.deployment_id(f"{FLOW}/deploy-on-image-push")

    def runs_by_tag() -> dict[str, FlowRun]:
        with stack.api(), get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[push_id]))
            )
        return {str(r.parameters["image_tag"]): r for r in runs}

    _notify(stack, "1.3")

    def newer_running() -> FlowRun | None:
        run = runs_by_tag().get("1.3")
        if run is None or run.state is None:
            return None
        return None if run.state.is_scheduled() or run.state.is_pending() else run

    newer = wait_until("the 1.3 run to start", newer_running, 60, stack.logs())
    _notify(stack, "1.2")
    older = wait_until("the trigger to start a 1.2 run", lambda: runs_by_tag().get("1.2"), 60)
    newer, older = stack.wait_final(newer.id), stack.wait_final(older.id)
    for run in (newer, older):
        assert run.parameters["spec"] == DEMO_SPEC
        assert_completed(stack, run)
    assert newer.name == "shop-web@1.3"  # the tag pushed, not the spec's 1.1
    status, config = app_config(stack)
    assert status.current_status == "RUNNING"
    assert config.image_url == f"{IMAGE_REPO}:1.3"
    assert newer.parameters["skip_older"] is older.parameters["skip_older"] is True
    assert older.start_time is not None and newer.end_time is not None
    assert older.start_time >= newer.end_time, "the two image-push runs overlapped"

    def skip_line() -> str | None:  # a run's last logs reach the API as its process exits
        return next((m for m in _run_logs(stack, older.id) if m.startswith("Skipped 1.2:")), None)

    skipped = wait_until(
        "the 1.2 run's log line saying it was skipped", skip_line, 20, stack.logs()
    )
    assert "already runs 1.3" in skipped, skipped


def _launch_chromium(playwright: Any, profile: Path) -> Any:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium package "
            "(make test does this: scripts/ensure-chromium)"
        )
    return playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 1000},
    )


def _form_input(page: Any, label: str) -> Any:
    """The input of the innermost schema-form property whose label starts with `label`."""
    return page.locator(
        "xpath=//span[contains(@class,'schema-form-property__label')"
        f" and starts-with(normalize-space(.),'{label}')]"
        "/ancestor::div[contains(concat(' ', normalize-space(@class), ' '),"
        " ' schema-form-property ')][1]//input"
    )


def _record_traffic(page: Any) -> list[str]:
    """The page's console errors, and its API calls that write or fail (for failure output)."""
    lines: list[str] = []

    def response(r: Any) -> None:
        if r.request.method != "GET" or r.status >= 400:
            sent = (r.request.post_data or "")[:300]
            lines.append(f"{r.status} {r.request.method} {r.url} {sent}")

    page.on("response", response)
    page.on("console", lambda m: lines.append(f"console {m.type}: {m.text}"))
    page.on("requestfailed", lambda r: lines.append(f"failed {r.method} {r.url} {r.failure}"))
    return lines


def _settle(page: Any, timeout_error: type[Exception]) -> None:
    """Let the page finish loading what it shows (the UI also polls, so never wait long)."""
    with suppress(timeout_error):
        page.wait_for_load_state("networkidle", timeout=5_000)


def _submit(page: Any, attempts: int = 3) -> UUID:
    """Submit the run form, as a person would again after the UI's "Something went wrong".

    Prefect's server on SQLite answers a write that raced another one (SQLITE_BUSY_SNAPSHOT)
    with 503, which its Python client retries by itself; the UI shows an error toast and keeps
    the form as it was. Returns the id of the flow run the form created.
    """
    statuses = []
    for _ in range(attempts):
        with page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith("/create_flow_run")
        ) as answer:
            page.get_by_role("button", name="Submit").click()
        statuses.append(answer.value.status)
        if answer.value.status == 201:
            return UUID(answer.value.json()["id"])
        assert answer.value.status == 503, f"create_flow_run answered {statuses}"
        page.wait_for_timeout(1000)
    raise AssertionError(f"create_flow_run answered {statuses}")


def test_c_a_custom_run_from_the_ui_form_completes(stack: Stack) -> None:
    try:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[dev]'")
    deployment_id = stack.deployment_id(f"{FLOW}/cross-account-deploy")
    run_name = "shop-web@1.1"
    screenshot = stack.tmp / "ui-run.png"
    plan_shot = stack.tmp / "ui-plan.png"
    with sync_playwright() as playwright:
        browser = _launch_chromium(playwright, stack.tmp / "chromium-profile")
        page = browser.new_page()
        traffic = _record_traffic(page)
        try:
            page.set_default_timeout(30_000)
            page.goto(f"{stack.ui_url}/deployments")
            page.get_by_role("link", name="cross-account-deploy", exact=True).first.click()
            page.wait_for_url(f"**/deployments/deployment/{deployment_id}**")
            page.get_by_role("button", name="Run", exact=True).click()
            page.get_by_text("Custom run").click()
            page.wait_for_url(re.compile(rf".*/deployments/deployment/{deployment_id}/run.*"))

            replicas = _form_input(page, "Replicas")
            assert replicas.input_value() == "2"  # the deployment's default (the demo spec)
            replicas.fill("3")
            run_id = _submit(page)
            run = stack.wait_final(run_id)
            # The flow names its runs for what they deploy (a name typed in the form would be
            # replaced when the run starts), and the UI shows that name.
            assert run.name == run_name
            page.goto(f"{stack.ui_url}/runs/flow-run/{run_id}")
            page.get_by_text(run_name).first.wait_for()
            with stack.api(), get_client(sync_client=True) as client:
                named = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[run_name]))
                )
            assert run_id in {r.id for r in named}
            assert run.parameters["spec"]["app"]["replicas"] == 3
            assert_completed(stack, run)

            page.get_by_text("Completed").first.wait_for()
            page.get_by_text("Artifacts", exact=True).first.click()
            page.get_by_text("plan-shop-web").first.wait_for()
            page.set_viewport_size({"width": 1400, "height": 1300})
            _settle(page, PlaywrightTimeout)
            page.screenshot(path=str(screenshot), full_page=True)
            # The plan artifact itself, rendered: the table of steps in both accounts.
            page.get_by_text("plan-shop-web", exact=True).first.click()
            page.wait_for_url(re.compile(r".*/artifacts/artifact/.*"))
            page.get_by_text("Deploy shop-web (cn-hangzhou:demo)").first.wait_for()
            page.set_viewport_size({"width": 2100, "height": 800})  # the table's six columns
            _settle(page, PlaywrightTimeout)
            page.screenshot(path=str(plan_shot), full_page=True)
        except Exception:
            failure = stack.tmp / "ui-failure.png"
            page.screenshot(path=str(failure), full_page=True)
            failure.with_suffix(".html").write_text(page.content())
            print(f"the browser's page at the failure: {failure} (and .html)")
            print("the browser's API writes and errors:\n" + "\n".join(traffic))
            raise
        finally:
            browser.close()

    assert screenshot.stat().st_size > 10_000
    if os.environ.get(SCREENSHOT_ENV):
        target = REPO / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        for shot in (screenshot, plan_shot):
            shutil.copyfile(shot, target / shot.name)
    status, config = app_config(stack)
    assert status.current_status == "RUNNING"
    assert (config.image_url, config.replicas) == (f"{IMAGE_REPO}:1.1", 3)


def test_d_the_scheduled_reconcile_deployment_reports_the_drift(stack: Stack) -> None:
    """Its default spec wants 2 replicas; the app runs 3: drift, reported, not applied.

    The 3 replicas are set here (a run of the deploy deployment), not left by an earlier test,
    so this test stands whatever the others did.
    """
    drifted = {**DEMO_SPEC, "app": {**DEMO_SPEC["app"], "replicas": 3}}
    with stack.api(), get_client(sync_client=True) as client:
        setup = client.create_flow_run_from_deployment(
            stack.deployment_id(f"{FLOW}/cross-account-deploy"), parameters={"spec": drifted}
        )
    assert_completed(stack, stack.wait_final(setup.id))
    with stack.api(), get_client(sync_client=True) as client:
        created = client.create_flow_run_from_deployment(stack.deployment_id("reconcile/reconcile"))
    run = stack.wait_final(created.id)
    assert_completed(stack, run)
    (artifact,) = [a for a in stack.artifacts(created.id) if a.key == "reconcile-drift"]
    table = str(artifact.data)
    assert "| cn-hangzhou:demo/shop-web | app | A |" in table, table
    assert "plan only" in table
    _, config = app_config(stack)
    assert config.replicas == 3


DRIFTED = "shop-web drifted from its spec"


class _Receiver(http.server.BaseHTTPRequestHandler):
    """A notification endpoint on loopback: keeps every JSON body POSTed to it."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.received.append(json.loads(self.rfile.read(length) or b"{}"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_e_the_automations_alert_on_a_failed_run_and_on_drift(stack: Stack) -> None:
    """automations.yaml applied with `crossdeploy automations apply` (twice: still one of each)
    against a notification block of the operator's (here a custom webhook on loopback); then a
    failed run of the deploy deployment and a `crossdeploy.drift.detected` event each send
    their notification."""
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        _alerts_on_failure_and_drift(stack, f"http://127.0.0.1:{receiver.server_port}/hook")
    finally:
        receiver.shutdown()


def _alerts_on_failure_and_drift(stack: Stack, hook: str) -> None:
    with stack.api():
        block = CustomWebhookNotificationBlock.model_validate(
            {
                "name": "crossdeploy-alerts",
                "url": hook,
                "json_data": {"subject": "{{subject}}", "body": "{{body}}"},
            }
        )
        block_id = block.save("crossdeploy-alerts", overwrite=True)
    env = {**os.environ, "PREFECT_API_URL": stack.api_url}
    apply = [str(BIN / "crossdeploy"), "automations", "apply"]
    apply += ["--notify", "custom-webhook/crossdeploy-alerts"]
    assert succeeded(apply, env).split() == [
        "crossdeploy-run-failed:",
        "created",
        "crossdeploy-drift-detected:",
        "created",
    ]
    assert "updated" in succeeded(apply, env)
    wanted = yaml.safe_load((REPO / "automations.yaml").read_text())["automations"]
    with stack.api(), get_client(sync_client=True) as client:
        for automation in wanted:
            (found,) = client.read_automations_by_name(automation["name"])
            assert found.enabled
            trigger = found.trigger.model_dump(mode="json")
            assert set(trigger["expect"]) == set(automation["trigger"]["expect"])
            assert trigger["match"] == automation["trigger"]["match"]
            (action,) = found.actions
            assert action.model_dump(mode="json")["block_document_id"] == str(block_id)

    broken = {**DEMO_SPEC, "accounts": {"app": "no-such-block", "registry": "sandbox-registry"}}
    with stack.api(), get_client(sync_client=True) as client:
        failing = client.create_flow_run_from_deployment(
            stack.deployment_id(f"{FLOW}/cross-account-deploy"), parameters={"spec": broken}
        )
    run = stack.wait_final(failing.id)
    assert run.state is not None and run.state.is_failed()
    drift = Event.model_validate(
        {
            "event": "crossdeploy.drift.detected",
            "resource": {
                "prefect.resource.id": "sae.app.cn-hangzhou:demo.shop-web",
                "prefect.resource.name": "shop-web",
                "sae.namespace": "cn-hangzhou:demo",
            },
            "payload": {
                "image": f"{IMAGE_REPO}:1.1",
                "blocked": False,
                "steps": [
                    {"step": "app", "account": "A", "now": "3", "wanted": "2", "action": "x"}
                ],
            },
        }
    )
    posted = httpx.post(f"{stack.api_url}/events", json=[drift.model_dump(mode="json")])
    assert posted.status_code in (200, 202, 204), posted.text

    def both() -> list[str] | None:
        subjects = [str(n.get("subject")) for n in _Receiver.received]
        expected = {
            f"crossdeploy: {run.name} Failed",
            "crossdeploy: shop-web drifted from its spec",
        }
        return subjects if expected <= set(subjects) else None

    subjects = wait_until("both notifications", both, 60, stack.logs())
    assert run.name == "shop-web@1.1"
    bodies = {str(n["subject"]): str(n["body"]) for n in _Receiver.received}
    assert "no-such-block" in bodies[f"crossdeploy: {run.name} Failed"]
    assert "- app (account A): 3 → 2 (x)" in bodies[f"crossdeploy: {DRIFTED}"]
    assert len(subjects) == 2, subjects


READ_BACK = """
import json, sys
from prefect.deployments import run_deployment
run = run_deployment(sys.argv[1], parameters=json.loads(sys.argv[2]), timeout=150)
result = run.state.result()
print(json.dumps({"name": run.name, "type": type(result).__name__, "outcome": result.outcome,
                  "message": result.message, "app_id": result.app_id}))
"""


def test_f_a_run_deployment_caller_in_another_process_reads_the_outcome(stack: Stack) -> None:
    """`run_deployment` waits for the run; its state's result is the DeployResult the worker's
    flow returned, read from the result storage (local, on this machine) by another client."""
    env = {**os.environ, "PREFECT_API_URL": stack.api_url}
    spec = {**DEMO_SPEC, "app": {**DEMO_SPEC["app"], "replicas": 2}}
    args = [str(BIN / "python"), "-c", READ_BACK, f"{FLOW}/cross-account-deploy"]
    out = succeeded([*args, json.dumps({"spec": spec})], env, timeout=200)
    read = json.loads(out.strip().splitlines()[-1])
    assert read["name"] == "shop-web@1.1"
    assert read["type"] == "DeployResult" and read["outcome"] in ("deployed", "unchanged")
    assert read["message"].startswith("shop-web ")
    status, _ = app_config(stack)
    assert read["app_id"] == status.app_id
