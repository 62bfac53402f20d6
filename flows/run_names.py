"""Flow-run names that say what runs: `shop-web@2.1`, `fleet-shop`, `teardown-shop-web`.

Each is a `flow_run_name` callable: Prefect calls it once the run's parameters are validated and
reads them from `prefect.runtime.flow_run.parameters`, whether the flow is called in this process
or a worker runs it from a deployment (the spec is then a DeploySpec or FleetSpec either way;
a plain mapping is validated here too). Prefect applies it to every run, so a name typed into
the UI's "Run name" field is replaced when the run starts.
"""

from __future__ import annotations

from typing import Any

from prefect.runtime import flow_run

from crossdeploy.fleet_spec import FleetSpec
from crossdeploy.spec import DeploySpec


def deploy_run_name() -> str:
    """`<app>@<tag>`: the tag actually deployed (`image_tag` when given, else the spec's)."""
    parameters = flow_run.parameters
    spec = DeploySpec.model_validate(parameters["spec"])
    tag = parameters.get("image_tag") or spec.image.ref.tag
    name = f"{spec.app.name}@{tag}"
    return f"{name} (dry run)" if parameters.get("dry_run") else name


def fleet_run_name() -> str:
    """`fleet-<fleet name>`."""
    parameters = flow_run.parameters
    name = f"fleet-{FleetSpec.model_validate(parameters['fleet']).name}"
    return f"{name} (dry run)" if parameters.get("dry_run") else name


def teardown_run_name() -> str:
    """`teardown-<app>`."""
    return f"teardown-{DeploySpec.model_validate(flow_run.parameters['spec']).app.name}"


def reconcile_run_name() -> str:
    """`reconcile-<n>-specs`, with `-apply` when it deploys drifted specs."""
    parameters: dict[str, Any] = flow_run.parameters
    count = len(parameters.get("specs") or [])
    name = f"reconcile-{count}-spec{'s' if count != 1 else ''}"
    return f"{name}-apply" if parameters.get("apply") else name


def fleet_app_run_name() -> str:
    """`<app>@<tag> in <namespace>`: one app of a fleet run across workers."""
    spec = DeploySpec.model_validate(flow_run.parameters["spec"])
    return f"{spec.app.name}@{spec.image.ref.tag} in {spec.app.namespace_id}"
