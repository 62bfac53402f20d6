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
        return 0 if again.ok else 1
