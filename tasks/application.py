"""The SAE application: created when missing, deployed when it differs, untouched when identical.

Only the parameters this tool manages are compared (image, pull access, size, command, envs,
namespace and network); anything else set on the app by hand is left as it is, because
DeployApplication keeps every parameter it is not given. An identical spec therefore starts no
change order at all.

Two races are absorbed rather than reported: a CreateApplication whose reply was lost (retried by
`call`, then `Application.AlreadyExists`) is recognised by its identical config and create order;
a deploy refused with `Application.ChangerOrderRunning` waits for that order and tries again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from alibabacloud_sae20190506 import models as sae_models
from prefect import task
from prefect.cache_policies import NO_CACHE

from blocks import AlibabaCloudCredentials
from crossdeploy.cloud import CloudError, call
from crossdeploy.plan import BLOCKED, OK, Change, PlanRow
from crossdeploy.spec import DeploySpec
from tasks.change_order import follow_change_order

MANAGED = (
    "PackageType",
    "ImageUrl",
    "AcrInstanceId",
    "AcrAssumeRoleArn",
    "ImagePullSecrets",
    "Cpu",
    "Memory",
    "Replicas",
    "Command",
    "CommandArgs",
    "Envs",
    "NamespaceId",
    "VpcId",
    "VSwitchId",
)
"""Wire names of the parameters compared and set; the order is the order differences are named."""

CLEARED = {
    "AcrInstanceId": "",
    "AcrAssumeRoleArn": "",
    "ImagePullSecrets": "",
    "Command": "",
    "CommandArgs": "[]",
    "Envs": "[]",
}
"""Optional parameters, and the value that unsets one the spec no longer gives."""

CREATE_ONLY = frozenset({"NamespaceId", "VpcId"})
"""Fixed when the app is created: DeployApplication cannot change them."""

_FIELDS = {
    "PackageType": "package_type",
    "ImageUrl": "image_url",
    "AcrInstanceId": "acr_instance_id",
    "AcrAssumeRoleArn": "acr_assume_role_arn",
    "ImagePullSecrets": "image_pull_secrets",
    "Cpu": "cpu",
    "Memory": "memory",
    "Replicas": "replicas",
    "Command": "command",
    "CommandArgs": "command_args",
    "Envs": "envs",
    "NamespaceId": "namespace_id",
    "VpcId": "vpc_id",
    "VSwitchId": "v_switch_id",
}
_INTS = frozenset({"Cpu", "Memory", "Replicas"})
_NOT_FOUND = frozenset({"InvalidApplication.NotFound", "InvalidAppId.NotFound"})
_PAGE_SIZE = 100


@dataclass(frozen=True)
class ApplicationState:
    app_name: str
    namespace_id: str
    region: str
    app_id: str | None
    desired: dict[str, str]
    """Wire name -> value, as sent."""
    current: dict[str, str]
    """The managed parameters the app has now (empty when missing)."""
    differences: tuple[str, ...]
    """Wire names of managed parameters that differ (empty for a missing app)."""
    rows: tuple[PlanRow, ...] = ()

    @property
    def action(self) -> str:
        return self.rows[0].action if self.rows else OK


@dataclass(frozen=True)
class ApplicationResult:
    app_id: str
    app_name: str
    action: str
    """created, deployed or unchanged."""
    change_order_id: str | None
    changes: tuple[Change, ...] = ()


def desired_parameters(
    spec: DeploySpec,
    *,
    role_arn: str | None,
    secret_id: int | None,
    instance_id: str | None,
    vpc_id: str | None = None,
    vswitch_id: str | None = None,
) -> dict[str, str]:
    """The managed parameters, by wire name; unset optional ones are left out."""
    app = spec.app
    params = {
        "PackageType": "Image",
        "ImageUrl": spec.image.url,
        "Cpu": str(app.cpu),
        "Memory": str(app.memory),
        "Replicas": str(app.replicas),
        "NamespaceId": app.namespace_id,
    }
    optional = {
        "AcrInstanceId": instance_id,
        "AcrAssumeRoleArn": role_arn,
        "ImagePullSecrets": None if secret_id is None else str(secret_id),
        "Command": app.command,
        "CommandArgs": None if app.args is None else json.dumps(app.args),
        "Envs": json.dumps([{"name": k, "value": v} for k, v in app.envs.items()])
        if app.envs
        else None,
        "VpcId": vpc_id,
        "VSwitchId": vswitch_id,
    }
    params.update({k: v for k, v in optional.items() if v})
    return params


def inspect_application(
    creds_a: AlibabaCloudCredentials,
    spec: DeploySpec,
    *,
    role_arn: str | None,
    secret_id: int | None,
    instance_id: str | None,
    vpc_id: str | None = None,
    vswitch_id: str | None = None,
) -> ApplicationState:
    """Find the app by exact name in its namespace and compare what it runs with the spec."""
    desired = desired_parameters(
        spec,
        role_arn=role_arn,
        secret_id=secret_id,
        instance_id=instance_id,
        vpc_id=vpc_id,
        vswitch_id=vswitch_id,
    )
    name, namespace_id = spec.app.name, spec.app.namespace_id
    sae = creds_a.get_client("sae")
    found = find_application(sae, name, namespace_id)
    wanted = size(desired)

    def state(
        app_id: str | None, row: PlanRow, current: dict[str, str], diffs: tuple[str, ...] = ()
    ) -> ApplicationState:
        return ApplicationState(
            name, namespace_id, spec.app.region, app_id, desired, current, diffs, (row,)
        )

    if found is None:
        return state(None, PlanRow("app", "A", name, "missing", wanted, "create"), {})
    app_id, deleting = found
    if deleting:
        reason = (
            f"{name} is being deleted in {namespace_id}, so it can be neither deployed nor "
            "created again yet. Run again once the deletion has finished."
        )
        return state(app_id, PlanRow("app", "A", name, "deleting", wanted, BLOCKED, reason), {})
    current = read_config(sae, app_id)
    diffs = differences(desired, current)
    fixed = [k for k in diffs if k in CREATE_ONLY]
    if fixed:
        has = ", ".join(f"{k} {current.get(k) or '(none)'}" for k in fixed)
        needs = ", ".join(f"{k} {desired.get(k)}" for k in fixed)
        reason = (
            f"{name} runs with {has}, but the spec needs {needs}; SAE cannot move an app. "
            "Delete it first, or deploy it under another name."
        )
        action, why = BLOCKED, reason
    else:
        action, why = (f"deploy ({', '.join(diffs)})" if diffs else OK), ""
    return state(
        app_id, PlanRow("app", "A", name, size(current), wanted, action, why), current, diffs
    )


def apply_application(
    creds_a: AlibabaCloudCredentials, state: ApplicationState, *, wait_seconds: float = 600
) -> ApplicationResult:
    """Create, deploy or leave alone; `wait_seconds` bounds waiting for another change order."""
    if state.action == BLOCKED:
        raise RuntimeError(f"app: {state.rows[0].reason}")
    if state.app_id is not None and not state.differences:
        return ApplicationResult(state.app_id, state.app_name, "unchanged", None)
    sae = creds_a.get_client("sae")
    if state.app_id is not None:
        return _deploy(creds_a, sae, state, state.app_id, state.differences, wait_seconds)
    request = sae_models.CreateApplicationRequest(
        app_name=state.app_name, deploy=True, **_typed(state.desired)
    )
    try:
        data = call("sae:CreateApplication", sae.create_application, request).body.data
    except CloudError as exc:
        if exc.code != "Application.AlreadyExists":
            raise
        return _converge(creds_a, sae, state, wait_seconds)
    return _created(state, str(data.app_id), str(data.change_order_id or "") or None)


def remove_application(
    creds_a: AlibabaCloudCredentials, changes: list[Change], *, timeout_seconds: float = 600
) -> list[Change]:
    """Delete the apps these changes say we created, following each delete to its end."""
    sae = creds_a.get_client("sae")
    removed = []
    for change in changes:
        if change.resource_type != "sae.application" or change.action != "created":
            continue
        request = sae_models.DeleteApplicationRequest(app_id=change.resource_id)
        delete = partial(call, "sae:DeleteApplication", sae.delete_application, request)
        try:
            data = _when_idle(creds_a, sae, change.resource_id, timeout_seconds, delete).body.data
        except CloudError as exc:
            if exc.code not in _NOT_FOUND:
                raise
            continue
        if data and data.change_order_id:
            outcome = follow_change_order(
                creds_a, str(data.change_order_id), timeout_seconds=timeout_seconds
            )
            if not outcome.succeeded:
                raise RuntimeError(outcome.summary())
        removed.append(Change("A", "sae.application", change.resource_id, "deleted", change.detail))
    return removed


@task(name="application", cache_policy=NO_CACHE)
def ensure_application(
    creds_a: AlibabaCloudCredentials,
    spec: DeploySpec,
    *,
    role_arn: str | None,
    secret_id: int | None,
    instance_id: str | None,
    vpc_id: str | None = None,
    vswitch_id: str | None = None,
) -> ApplicationResult:
    """The app as the spec says; follow the returned change order (if any) to see it land."""
    state = inspect_application(
        creds_a,
        spec,
        role_arn=role_arn,
        secret_id=secret_id,
        instance_id=instance_id,
        vpc_id=vpc_id,
        vswitch_id=vswitch_id,
    )
    return apply_application(creds_a, state)


# -- comparing -------------------------------------------------------------------------------------


def differences(desired: dict[str, str], current: dict[str, str]) -> tuple[str, ...]:
    """Managed parameters whose values differ; optional ones the spec leaves out must be unset.

    VpcId/VSwitchId left out of `desired` mean "the namespace's", so they are not compared.
    """
    keys = [k for k in MANAGED if k in desired or k in CLEARED]
    return tuple(k for k in keys if _norm(k, desired.get(k)) != _norm(k, current.get(k)))


def _norm(key: str, value: str | None) -> object:
    """A comparable form: JSON lists parsed, envs as a set, empty as unset."""
    text = "" if value is None else str(value)
    if key in ("CommandArgs", "Envs"):
        try:
            parsed = json.loads(text) if text else []
        except ValueError:
            return text
        if key == "Envs" and isinstance(parsed, list):
            return frozenset(json.dumps(e, sort_keys=True) for e in parsed)
        return json.dumps(parsed)
    return text


def size(params: dict[str, str]) -> str:
    """`1 core, 2 GiB, 2 replicas`."""
    try:
        cores = int(params["Cpu"]) / 1000
        gib = int(params["Memory"]) / 1024
        replicas = int(params["Replicas"])
    except (KeyError, ValueError):
        return "unknown size"
    return (
        f"{cores:g} core{'s' if cores > 1 else ''}, {gib:g} GiB, "
        f"{replicas} replica{'s' if replicas != 1 else ''}"
    )


# -- reading ---------------------------------------------------------------------------------------


def find_application(sae: Any, name: str, namespace_id: str) -> tuple[str, bool] | None:
    """(AppId, being deleted) of the app with exactly this name in the namespace.

    ListApplications matches AppName as a substring, so the exact name is filtered here.
    """
    page = 1
    while True:
        request = sae_models.ListApplicationsRequest(
            app_name=name, namespace_id=namespace_id, current_page=page, page_size=_PAGE_SIZE
        )
        data = call("sae:ListApplications", sae.list_applications, request).body.data
        apps = list(data.applications or []) if data else []
        for app in apps:
            if app.app_name == name and app.namespace_id == namespace_id:
                return str(app.app_id), bool(app.app_deleting_status)
        if not apps or page * _PAGE_SIZE >= int(data.total_size or 0):
            return None
        page += 1


def read_config(sae: Any, app_id: str) -> dict[str, str]:
    """The managed parameters of the app's current configuration, by wire name, as text."""
    request = sae_models.DescribeApplicationConfigRequest(app_id=app_id)
    data = call("sae:DescribeApplicationConfig", sae.describe_application_config, request)
    config = data.body.data.to_map() if data.body.data else {}
    return {k: str(config[k]) for k in MANAGED if config.get(k) not in (None, "")}


# -- writing ---------------------------------------------------------------------------------------


def _typed(params: dict[str, str]) -> dict[str, Any]:
    """SDK keyword arguments from wire-named text values."""
    return {_FIELDS[k]: int(v) if k in _INTS else v for k, v in params.items()}


def _created(
    state: ApplicationState, app_id: str, change_order_id: str | None
) -> ApplicationResult:
    where = f"{state.app_name} in {state.namespace_id}"
    changes = [Change("A", "sae.application", app_id, "created", where)]
    if change_order_id:
        changes.append(Change("A", "sae.change-order", change_order_id, "started", "create"))
    return ApplicationResult(app_id, state.app_name, "created", change_order_id, tuple(changes))


def _deploy(
    creds_a: AlibabaCloudCredentials,
    sae: Any,
    state: ApplicationState,
    app_id: str,
    diffs: tuple[str, ...],
    wait_seconds: float,
) -> ApplicationResult:
    params = {k: v for k, v in state.desired.items() if k not in CREATE_ONLY}
    params.update({k: CLEARED[k] for k in diffs if k in CLEARED and k not in state.desired})
    request = sae_models.DeployApplicationRequest(app_id=app_id, deploy="true", **_typed(params))
    deploy = partial(call, "sae:DeployApplication", sae.deploy_application, request)
    data = _when_idle(creds_a, sae, app_id, wait_seconds, deploy).body.data
    change_order_id = str(data.change_order_id or "") or None
    changes = [Change("A", "sae.application", app_id, "deployed", ", ".join(diffs))]
    if change_order_id:
        changes.append(Change("A", "sae.change-order", change_order_id, "started", "deploy"))
    return ApplicationResult(app_id, state.app_name, "deployed", change_order_id, tuple(changes))


def _when_idle(
    creds_a: AlibabaCloudCredentials,
    sae: Any,
    app_id: str,
    wait_seconds: float,
    write: Callable[[], Any],
) -> Any:
    """Run `write`; while another change order of the app runs, wait for it and try again."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return write()
        except CloudError as exc:
            left = deadline - time.monotonic()
            if exc.code != "Application.ChangerOrderRunning" or left <= 0:
                raise
        running = _running_order(sae, app_id)
        if running is None:
            time.sleep(min(1.0, left))
            continue
        follow_change_order(creds_a, running, timeout_seconds=left)


def _running_order(sae: Any, app_id: str) -> str | None:
    request = sae_models.DescribeApplicationStatusRequest(app_id=app_id)
    data = call("sae:DescribeApplicationStatus", sae.describe_application_status, request).body.data
    if data and data.last_change_order_running and data.last_change_order_id:
        return str(data.last_change_order_id)
    return None


def _converge(
    creds_a: AlibabaCloudCredentials, sae: Any, state: ApplicationState, wait_seconds: float
) -> ApplicationResult:
    """CreateApplication met an app of that name: our own lost reply, or someone else's app.

    The same managed config and a create as its only change order mean the earlier attempt went
    through: ours, created. Otherwise it is an existing app, brought to the spec as any other.
    """
    found = find_application(sae, state.app_name, state.namespace_id)
    if found is None:
        raise RuntimeError(f"{state.app_name} exists and cannot be found; run again")
    app_id = found[0]
    diffs = differences(state.desired, read_config(sae, app_id))
    if diffs:
        return _deploy(creds_a, sae, state, app_id, diffs, wait_seconds)
    request = sae_models.ListChangeOrdersRequest(app_id=app_id, page_size=_PAGE_SIZE)
    data = call("sae:ListChangeOrders", sae.list_change_orders, request).body.data
    orders = list(data.change_order_list or []) if data else []
    if len(orders) == 1 and orders[0].co_type_code == "CoCreateApp":
        return _created(state, app_id, str(orders[0].change_order_id))
    return ApplicationResult(app_id, state.app_name, "unchanged", None)
