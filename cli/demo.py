"""`crossdeploy demo`: the whole job against a local sandbox cloud, in one command.

Starts the sandbox with the demo world (account A runs SAE, account B owns the registry),
saves a credentials block per account, deploys the demo spec with the Prefect flow, shows the
application running, and re-runs the same spec to show that nothing changes the second time.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from rich.console import Console

from cli.render import console as default_console
from cli.runner import report, run_deploy
from cli.sandbox_blocks import save_sandbox_blocks
from crossdeploy.spec import DeploySpec, load_spec
from sandbox.testing import SandboxProcess


def demo_spec_path() -> Path:
    return Path(str(resources.files("crossdeploy") / "specs" / "demo.yaml"))


def _status_line(spec: DeploySpec) -> str:
    from alibabacloud_sae20190506 import models as sae_models

    from blocks import AlibabaCloudCredentials
    from crossdeploy.cloud import call

    creds = AlibabaCloudCredentials.load(spec.accounts.app)
    assert isinstance(creds, AlibabaCloudCredentials)
    sae = creds.in_region(spec.app.region).get_client("sae")
    listed = call(
        "sae:ListApplications",
        sae.list_applications,
        sae_models.ListApplicationsRequest(app_name=spec.app.name, namespace_id=spec.app.namespace),
    ).body.data.applications
    app = next(a for a in listed if a.app_name == spec.app.name)
    status = call(
        "sae:DescribeApplicationStatus",
        sae.describe_application_status,
        sae_models.DescribeApplicationStatusRequest(app_id=app.app_id),
    ).body.data
    return (
        f"{app.app_name} ({app.app_id}) in {app.namespace_id}: {status.current_status}, "
        f"{status.running_instances} instances running, image {app.image_url}"
    )


# Printed when the demo ends: the demo's sandbox stops with it, so the next steps are by hand.
NEXT_STEPS = """
Done. This demo's sandbox cloud and temporary Prefect server stop now, and its app with them.
Try it by hand next (README.md, "Try it by hand"):
  source .venv/bin/activate
  crossdeploy sandbox serve --port 8100                      # in one terminal
  crossdeploy sandbox blocks --url http://127.0.0.1:8100     # in another
  crossdeploy plan crossdeploy/specs/demo.yaml               # then deploy, and teardown
  change the spec (the image tag to 1.0, replicas: 3) and plan it again: the plan shows what changes
"""


def run_demo(out: Console | None = None) -> int:
    out = out or default_console()
    spec = load_spec(demo_spec_path())
    with SandboxProcess() as sandbox:
        out.print(
            f"Sandbox cloud listening on {sandbox.url} (demo world: accounts app and registry)"
        )
        for name in save_sandbox_blocks(sandbox.url):
            out.print(f"Saved Prefect block alibaba-cloud-credentials/{name}")
        out.print(f"\nDeploying {demo_spec_path().name} with the cross-account-deploy flow...\n")
        code = report(out, run_deploy(spec, dry_run=False))
        if code != 0:
            return code
        out.print("\n" + _status_line(spec))
        out.print("\nRunning the same spec again (an identical spec must change nothing)...\n")
        again = run_deploy(spec, dry_run=False)
        out.print(again.message, markup=False)
        if not again.ok:
            return 1
        out.print(NEXT_STEPS, markup=False)
        return 0
