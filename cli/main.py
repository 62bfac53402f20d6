"""Deploy an SAE app in one Alibaba Cloud account from a private ACR image in another, with
Prefect; and the local sandbox cloud to try it on (README.md: "Try it by hand")."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from crossdeploy.spec import DeploySpec

# Telemetry off for every temporary Prefect server a command starts (Prefect's own, for `sandbox
# blocks` and the demo, and the CLI's, cli/temporary_server.py): it would record a session in
# SQLite while the server migrates ("database is locked" tracebacks that mean nothing to a user).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
sandbox_app = typer.Typer(no_args_is_help=True, help="The local sandbox cloud.")
app.add_typer(sandbox_app, name="sandbox")
webhook_app = typer.Typer(no_args_is_help=True, help="The ACR image-push trigger bridge.")
app.add_typer(webhook_app, name="webhook")
automations_app = typer.Typer(no_args_is_help=True, help="Prefect automations (alerts).")
app.add_typer(automations_app, name="automations")


SpecArg = Annotated[Path, typer.Argument(help="Deploy spec (YAML).", exists=False)]


def _spec_or_exit(out: Console, path: Path) -> DeploySpec:
    """The spec, or every problem printed and exit code 2 (before any API call)."""
    from cli.runner import read_spec

    spec = read_spec(out, path)
    if spec is None:
        raise typer.Exit(2)
    return spec


SpecsArg = Annotated[
    list[Path],
    typer.Argument(
        help="Deploy spec(s) (YAML). Several specs, or a fleet file (with `apps:`), deploy as "
        "one fleet: they must share accounts, image, access, network and rollout.",
        exists=False,
    ),
]
FleetOption = Annotated[
    str | None,
    typer.Option("--fleet", help="Fleet name (names the shared pull role and policy)."),
]
QuotaOption = Annotated[
    int,
    typer.Option(
        "--calls-per-minute",
        min=1,
        help="Fleet: SAE API calls per minute per account and region, for a rate limit not "
        "created yet (an existing one is used as set).",
    ),
]
ParallelOption = Annotated[
    int | None,
    typer.Option(
        "--max-parallel", min=1, help="Fleet: apps deployed at once (default: sized to the quota)."
    ),
]


AppDeploymentOption = Annotated[
    str | None,
    typer.Option(
        "--app-deployment",
        help="Fleet: land each app as a run of this deployment (fleet-app/fleet-app) on its work "
        "pool, so every worker of the pool shares the fleet; needs PREFECT_API_URL (the server "
        "the workers poll).",
    ),
]


def _run(
    paths: list[Path],
    fleet_name: str | None,
    dry_run: bool,
    calls: int,
    parallel: int | None,
    app_deployment: str | None = None,
) -> int:
    """One spec: the cross-account deploy; several or a fleet file: the fleet deploy."""
    from prefect.settings import PREFECT_API_URL

    from cli.interrupt import after_deploy, after_plan, interruptible
    from cli.render import console
    from cli.runner import read_specs, report, run_deploy, run_fleet
    from crossdeploy.spec import DeploySpec

    out = console()
    if app_deployment and not PREFECT_API_URL.value():
        out.print(
            "--app-deployment needs PREFECT_API_URL: the Prefect server whose workers run the "
            "apps (a temporary server of this command's own has no worker)"
        )
        return 2
    target = read_specs(out, paths, fleet_name)
    if target is None:
        return 2
    name = target.app.name if isinstance(target, DeploySpec) else f"fleet {target.name}"
    again = " ".join(["deploy", *map(str, paths), *(["--fleet", fleet_name] if fleet_name else [])])
    single = isinstance(target, DeploySpec) and len(paths) == 1
    undo = f"`crossdeploy teardown {paths[0]}`" if single else "`crossdeploy teardown SPEC` per app"
    with interruptible(out, after_plan() if dry_run else after_deploy(name, again, undo)):
        if isinstance(target, DeploySpec):
            return report(out, run_deploy(target, dry_run=dry_run))
        outcome = run_fleet(
            target,
            dry_run=dry_run,
            calls_per_minute=calls,
            max_parallel=parallel,
            app_deployment=app_deployment,
        )
        return report(out, outcome)


@app.command("plan")
def plan(
    spec_paths: SpecsArg,
    fleet: FleetOption = None,
    calls_per_minute: QuotaOption = 60,
    max_parallel: ParallelOption = None,
) -> None:
    """Check every precondition in both accounts and print the plan; changes nothing."""
    raise typer.Exit(_run(spec_paths, fleet, True, calls_per_minute, max_parallel))


@app.command("deploy")
def deploy(
    spec_paths: SpecsArg,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan only.")] = False,
    fleet: FleetOption = None,
    calls_per_minute: QuotaOption = 60,
    max_parallel: ParallelOption = None,
    app_deployment: AppDeploymentOption = None,
) -> None:
    """Run the cross_account_deploy flow for the spec, or fleet_deploy for several apps."""
    raise typer.Exit(
        _run(spec_paths, fleet, dry_run, calls_per_minute, max_parallel, app_deployment)
    )


@app.command("teardown")
def teardown(spec_path: SpecArg) -> None:
    """Remove what deploy created for the spec (app, secret, whitelist entries, role, policy)."""
    from cli.interrupt import after_teardown, interruptible
    from cli.render import console
    from cli.runner import report, run_teardown

    out = console()
    spec = _spec_or_exit(out, spec_path)
    with interruptible(out, after_teardown(spec.app.name, f"teardown {spec_path}")):
        code = report(out, run_teardown(spec))
    raise typer.Exit(code)


@app.command("permissions")
def permissions(
    spec_path: SpecArg,
    plan_only: Annotated[
        bool, typer.Option("--plan-only", help="Only what `plan` needs (reads).")
    ] = False,
    for_teardown: Annotated[
        bool, typer.Option("--teardown", help="What `teardown` needs instead.")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help='Print only {"app": <policy>, "registry": <policy>}.'),
    ] = False,
) -> None:
    """Print the least-privilege RAM policy each account's identity needs for the spec (deploy,
    or --plan-only, or --teardown), made from what each step calls; changes nothing."""
    import json

    from rich.console import Console

    from cli.interrupt import after_plan, interruptible
    from cli.render import console, print_permissions
    from cli.runner import run_permissions
    from crossdeploy.permissions import Phase

    if plan_only and for_teardown:
        raise typer.BadParameter("--plan-only and --teardown exclude each other")
    # With --json, stdout carries the JSON alone: everything else goes to stderr.
    out = Console(stderr=True, emoji=False, highlight=False) if as_json else console()
    spec = _spec_or_exit(out, spec_path)
    phase: Phase = "plan" if plan_only else "teardown" if for_teardown else "deploy"
    with interruptible(out, after_plan()):
        required = run_permissions(spec, phase)
    if isinstance(required, str):
        out.print(required, markup=False, style="red")
        raise typer.Exit(1)
    if as_json:
        print(json.dumps(required.policies, indent=2))
    else:
        print_permissions(out, required, spec)
    raise typer.Exit(0)


@app.command("demo")
def demo() -> None:
    """Start a sandbox cloud, register its blocks and deploy the demo app across two accounts."""
    from cli.demo import run_demo

    raise typer.Exit(run_demo())


@sandbox_app.command("serve")
def sandbox_serve(
    world: Annotated[
        Path | None, typer.Option(help="World file (default: the bundled demo world).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind; loopback by default.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 0,
    state: Annotated[
        Path | None, typer.Option(help="SQLite state file (default: a fresh temporary one).")
    ] = None,
    tls_ca_out: Annotated[
        Path | None,
        typer.Option(help="Also serve HTTPS, with a test CA made now and written to this file."),
    ] = None,
    tls_port: Annotated[int, typer.Option(help="HTTPS port with --tls-ca-out; 0: free.")] = 0,
) -> None:
    """Start the sandbox cloud and print `sandbox listening on http://HOST:PORT` when ready."""
    import yaml
    from pydantic import ValidationError

    from sandbox.server import Tls, serve

    tls = Tls(tls_port, tls_ca_out) if tls_ca_out is not None else None
    try:
        serve(world_path=world, host=host, port=port, state_path=state, tls=tls)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'world'}: {error['msg']}"
            for error in exc.errors()
        )
        typer.echo(f"crossdeploy sandbox serve: invalid world file: {problems}", err=True)
        raise typer.Exit(2) from None
    except (yaml.YAMLError, OSError, ValueError) as exc:
        typer.echo(f"crossdeploy sandbox serve: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(2) from None


@sandbox_app.command("blocks")
def sandbox_blocks(
    url: Annotated[str, typer.Option(help="Sandbox URL, as printed by `sandbox serve`.")],
    world: Annotated[
        Path | None, typer.Option(help="World file (default: the bundled demo world).")
    ] = None,
) -> None:
    """Save one AlibabaCloudCredentials block per world account, named sandbox-<account>."""
    from cli.sandbox_blocks import save_sandbox_blocks

    for name in save_sandbox_blocks(url, world):
        typer.echo(f"saved block alibaba-cloud-credentials/{name}")


@sandbox_app.command("actions")
def sandbox_actions() -> None:
    """List the emulated actions per product, from the sandbox's route table."""
    from sandbox.routes import PRODUCTS, ROUTES

    for product in PRODUCTS:
        routes = [r for r in ROUTES if r.product is product]
        typer.echo(f"{product.code} {product.version} ({product.style}, {len(routes)} actions)")
        for route in routes:
            where = f"{route.method} {route.path}" if product.style == "ROA" else route.method
            flag = "write" if route.write else "read"
            typer.echo(f"  {route.action:<40} {flag:<5} {where}")


@automations_app.command("apply")
def automations_apply(
    notify: Annotated[
        str,
        typer.Option(
            help="The notification block to send alerts to: <block-type-slug>/<block-name>, "
            "e.g. slack-webhook/crossdeploy-alerts."
        ),
    ],
    file: Annotated[Path, typer.Option(help="The automations file.")] = Path("automations.yaml"),
) -> None:
    """Create or update (by name) the automations of automations.yaml on PREFECT_API_URL."""
    from cli.automations import AutomationsError, apply

    try:
        done = apply(file, notify)
    except AutomationsError as exc:
        typer.echo(f"crossdeploy automations apply: {exc}", err=True)
        raise typer.Exit(2) from None
    for name, what in done:
        typer.echo(f"{name}: {what}")


@webhook_app.command("serve")
def webhook_serve(
    host: Annotated[str, typer.Option(help="Address to bind; loopback by default.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 0,
    token: Annotated[
        str | None,
        typer.Option(
            help="Shared secret the ACR trigger URL carries as ?token= "
            "(default: $CROSSDEPLOY_WEBHOOK_TOKEN).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Receive ACR push triggers at POST /acr?token=... and emit `acr.image.pushed` events.

    Prints `webhook listening on http://HOST:PORT` when ready; events go to PREFECT_API_URL.
    """
    import os

    from cli.webhook import TOKEN_ENV, serve

    secret = token if token is not None else os.environ.get(TOKEN_ENV, "")
    if not secret:
        typer.echo(
            f"crossdeploy webhook serve: no token: pass --token or set {TOKEN_ENV}", err=True
        )
        raise typer.Exit(2)
    try:
        serve(host=host, port=port, token=secret)
    except (OSError, ValueError) as exc:
        typer.echo(f"crossdeploy webhook serve: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
