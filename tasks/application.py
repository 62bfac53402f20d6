"""The SAE application: created when missing, deployed when it differs, untouched when identical.

Only the parameters this tool manages are compared (image, pull access, size, command, envs,
namespace and network, edition, the batch release and every `app.advanced` parameter); anything
else set on the app by hand is left as it is, because DeployApplication keeps every parameter it
is not given. An identical spec therefore starts no change order at all. A parameter that
DescribeApplicationConfig does not return (a secret such as OssAkSecret, SaeVersion, ...) cannot
be compared: it is sent whenever the app is created or deployed, and the plan says it was not
compared. A DeployApplication-only parameter (UpdateStrategy, MinReadyInstances, ...) the app has
never had is sent with the next deploy rather than starting one.

Two races are absorbed rather than reported. A CreateApplication that fails in any way (its reply
lost and the retry refused, say) is followed by reading the app by name: one that is there now is
recognised as ours by its identical config and create order, or deployed to the spec; SAE
documents no code for "the name is taken", so none is relied on. A write refused with
`Application.ChangerOrderRunning` or `Application.InvalidStatus` (both "try again later" in SAE's
error table, and both retried by Terraform's provider) waits for the running order and tries
again.

Requests carry exactly the parameters set (`sae_params.request`): a console-set sidecar or init
container the spec does not mention is never sent as an empty list, which would remove it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from alibabacloud_sae20190506 import models as sae_models

from blocks import AlibabaCloudCredentials
from crossdeploy import sae_params
from crossdeploy.cloud import CloudError, call, write_once
from crossdeploy.ledger import UNASSIGNED, Intent
from crossdeploy.permissions import ALL, Arns, Needs, grant
from crossdeploy.plan import BLOCKED, OK, Change, PlanRow
from crossdeploy.spec import DeploySpec, advanced_wire
from tasks import image, network, pull_role, registry_secret
from tasks.change_order import follow_change_order
from tasks.step import Accounts, Inspection, Step

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
    "SecurityGroupId",
    "NewSaeVersion",
    "SaeVersion",
    "UpdateStrategy",
)
"""Wire names of the core parameters compared and set, named first in this order; the spec's
`app.advanced` parameters follow in the spec's order."""

CLEARED = {
    "AcrInstanceId": "",
    "AcrAssumeRoleArn": "",
    "ImagePullSecrets": "",
    "Command": "",
    "CommandArgs": "[]",
    "Envs": "[]",
}
"""Optional parameters, and the value that unsets one the spec no longer gives."""

CREATE_ONLY = sae_params.CREATE_ONLY
"""Fixed when the app is created (NamespaceId, VpcId, ...): DeployApplication cannot change them."""
RESOURCE_TYPE = "sae.application"
_MOVES = ("NamespaceId", "VpcId")
_NOT_FOUND = frozenset({"InvalidApplication.NotFound", "InvalidAppId.NotFound"})
_BUSY = frozenset({"Application.ChangerOrderRunning", "Application.InvalidStatus"})
"""Refusals that pass: SAE's error table says "Please try again later" for both (reference 2.9),
and Terraform's provider retries both (`resource_alicloud_sae_application.go`)."""
_PAGE_SIZE = 100


@dataclass(frozen=True)
class ApplicationState:
    app_name: str
    namespace_id: str
    region: str
    app_id: str | None
    desired: dict[str, Any]
    """Wire name -> value, as sent (a secret as its `{secret_block: NAME}` reference)."""
    current: dict[str, Any]
    """The configuration the app has now, secrets left out (empty when missing)."""
    differences: tuple[str, ...]
    """Wire names of managed parameters that differ (empty for a missing app)."""
    rows: tuple[PlanRow, ...] = ()

    @property
    def action(self) -> str:
        return self.rows[0].action if self.rows else OK

    @property
    def unchanged(self) -> bool:
        """The app is there as the spec wants it: applying it calls nothing."""
        return self.app_id is not None and not self.differences


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
) -> dict[str, Any]:
    """The managed parameters, by wire name; unset optional ones are left out.

    Core values are text; `app.advanced` values are as the SDK models take them.
    """
    app = spec.app
    params: dict[str, Any] = {
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
        "SecurityGroupId": app.security_group_id,
        "NewSaeVersion": app.edition,
        "SaeVersion": "v2" if app.edition else None,
        "UpdateStrategy": spec.rollout.update_strategy(),
    }
    params.update({k: v for k, v in optional.items() if v})
    params.update(advanced_wire(app.advanced))
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
    known: ApplicationState | None = None,
) -> ApplicationState:
    """Find the app by exact name in its namespace and compare what it runs with the spec.

    `known`: the app as this run already read it; only what the spec wants changed (a secret
    created since has an id), so the app is compared again without reading it again."""
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
    read: dict[str, Any] | None = None
    if known is not None and not any(row.blocked for row in known.rows):
        found = (known.app_id, False) if known.app_id else None
        read = known.current
    else:
        found = find_application(sae, name, namespace_id)
    wanted = size(desired)

    def state(
        app_id: str | None, row: PlanRow, current: dict[str, Any], diffs: tuple[str, ...] = ()
    ) -> ApplicationState:
        return ApplicationState(
            name, namespace_id, spec.app.region, app_id, desired, current, diffs, (row,)
        )

    if found is None:
        note = notes(desired, {})
        return state(None, PlanRow("app", "A", name, "missing", wanted, "create", note), {})
    app_id, deleting = found
    if deleting:
        reason = (
            f"{name} is being deleted in {namespace_id}, so it can be neither deployed nor "
            "created again yet. Run again once the deletion has finished."
        )
        return state(app_id, PlanRow("app", "A", name, "deleting", wanted, BLOCKED, reason), {})
    current = read_config(sae, app_id) if read is None else read
    diffs = differences(desired, current)
    fixed = [k for k in diffs if k in CREATE_ONLY]
    if fixed:
        has = ", ".join(f"{k} {sae_params.shown(k, current.get(k))}" for k in fixed)
        needs = ", ".join(f"{k} {sae_params.shown(k, desired.get(k))}" for k in fixed)
        cause = (
            "SAE cannot move an app"
            if set(fixed) <= set(_MOVES)
            else f"SAE sets {', '.join(fixed)} only when it creates an app"
        )
        reason = (
            f"{name} runs with {has}, but the spec needs {needs}; {cause}. "
            "Delete it first, or deploy it under another name."
        )
        action, why = BLOCKED, reason
    else:
        action = f"deploy ({', '.join(diffs)})" if diffs else OK
        why = notes(desired, current, diffs)
    now, wanted = columns(desired, current, diffs)
    return state(app_id, PlanRow("app", "A", name, now, wanted, action, why), current, diffs)


def apply_application(
    creds_a: AlibabaCloudCredentials, state: ApplicationState, *, wait_seconds: float = 600
) -> ApplicationResult:
    """Create, deploy or leave alone; `wait_seconds` bounds waiting for another change order."""
    if state.action == BLOCKED:
        raise RuntimeError(f"app: {state.rows[0].reason}")
    if state.unchanged:
        return ApplicationResult(str(state.app_id), state.app_name, "unchanged", None)
    sae = creds_a.get_client("sae")
    if state.app_id is not None:
        return _deploy(creds_a, sae, state, state.app_id, state.differences, wait_seconds)
    params = {k: v for k, v in state.desired.items() if k not in sae_params.DEPLOY_ONLY}
    request = _request(
        sae_models.CreateApplicationRequest, params, AppName=state.app_name, Deploy=True
    )
    try:
        data = call("sae:CreateApplication", sae.create_application, request).body.data
    except CloudError:
        found = find_application(sae, state.app_name, state.namespace_id)
        if found is None:
            raise
        return _converge(creds_a, sae, state, found[0], wait_seconds)
    return _created(state, str(data.app_id), str(data.change_order_id or "") or None)


def remove_application(
    creds_a: AlibabaCloudCredentials, changes: list[Change], *, timeout_seconds: float = 600
) -> list[Change]:
    """Delete the apps these changes say we created, following each delete to its end."""
    sae = creds_a.get_client("sae")
    removed = []
    for change in changes:
        if change.resource_type != RESOURCE_TYPE or change.action != "created":
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
        removed.append(Change("A", RESOURCE_TYPE, change.resource_id, "deleted", change.detail))
    return removed


# -- comparing -------------------------------------------------------------------------------------


def _order(desired: dict[str, Any]) -> list[str]:
    core = [k for k in MANAGED if k in desired or k in CLEARED]
    return core + [k for k in desired if k not in MANAGED]


def comparable(key: str) -> bool:
    """Whether DescribeApplicationConfig reports the parameter (secrets are never compared)."""
    return key in sae_params.RETURNED and not sae_params.is_secret(key)


def _pending(key: str, current: dict[str, Any]) -> bool:
    """A DeployApplication-only parameter the app has never had: sent with the next deploy."""
    return key in sae_params.DEPLOY_ONLY and _norm(key, current.get(key)) is None


def differences(desired: dict[str, Any], current: dict[str, Any]) -> tuple[str, ...]:
    """Managed parameters whose values differ; optional ones the spec leaves out must be unset.

    VpcId/VSwitchId left out of `desired` mean "the namespace's", so they are not compared;
    neither are parameters the app cannot report, nor release settings it never had.
    """
    return tuple(
        k
        for k in _order(desired)
        if comparable(k)
        and not (_pending(k, current) and k in desired)
        and _norm(k, desired.get(k)) != _norm(k, current.get(k))
    )


def notes(desired: dict[str, Any], current: dict[str, Any], diffs: tuple[str, ...] = ()) -> str:
    """The plan's words on the app: what differs (masked), what could not be compared."""
    parts = [_difference(k, current.get(k), desired.get(k)) for k in diffs]
    blind = [k for k in _order(desired) if k in desired and not comparable(k)]
    if blind and current:
        parts.append(
            f"not compared ({', '.join(blind)}): DescribeApplicationConfig does not return "
            "them, so they are sent with the next create or deploy but never start one"
        )
    waiting = [
        k for k in _order(desired) if k in desired and comparable(k) and _pending(k, current)
    ]
    if waiting and current:
        when = "sent with this deploy" if diffs else "applied with the next deploy"
        parts.append(f"{', '.join(waiting)}: {when}")
    return "; ".join(parts)


def _difference(key: str, now: Any, wanted: Any) -> str:
    """`Liveness.initialDelaySeconds: 5 → 20` for objects, `Replicas: 2 → 3` otherwise."""
    before, after = _norm(key, now), _norm(key, wanted)
    if isinstance(before, dict) and isinstance(after, dict) and not sae_params.is_secret(key):
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        return ", ".join(
            f"{key}.{k}: {sae_params.shown(k, before.get(k))} → {sae_params.shown(k, after.get(k))}"
            for k in changed
        )
    return f"{key}: {sae_params.shown(key, now)} → {sae_params.shown(key, wanted)}"


def _as_returned(key: str, value: Any) -> Any:
    """The value as DescribeApplicationConfig's model can express it (unknown nested keys go)."""
    field = _RETURNED_FIELDS.get(key)
    if field is None or field.kind == "str" or value in (None, ""):
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    try:
        return (
            sae_models.DescribeApplicationConfigResponseBodyData()
            .from_map({key: value})
            .to_map()[key]
        )
    except (AttributeError, TypeError, KeyError):
        return value


_RETURNED_FIELDS = sae_params.describe_model(sae_models.DescribeApplicationConfigResponseBodyData)


def _norm(key: str, value: Any) -> object:
    """A comparable form: envs as a set, JSON parsed, scalars as text, empty as unset."""
    if key in ("CommandArgs", "Envs"):
        text = "" if value is None else value if isinstance(value, str) else json.dumps(value)
        try:
            parsed = json.loads(text) if text else []
        except ValueError:
            return text
        if not parsed:
            return None
        if key == "Envs" and isinstance(parsed, list):
            return frozenset(json.dumps(e, sort_keys=True) for e in parsed)
        return json.dumps(parsed)
    return sae_params.canonical(_as_returned(key, value))


SIZE = ("Cpu", "Memory", "Replicas")


def columns(
    desired: dict[str, Any], current: dict[str, Any], diffs: tuple[str, ...]
) -> tuple[str, str]:
    """The plan row's now and wanted: the app's size, or, when something else changes, the first
    field that does (and how many more do)."""
    other = [k for k in diffs if k not in SIZE]
    if not other:
        return size(current), size(desired)
    key, more = other[0], len(diffs) - 1
    tail = f" (+{more} more)" if more else ""
    return (
        f"{key} {sae_params.shown(key, current.get(key))}",
        f"{key} {sae_params.shown(key, desired.get(key))}{tail}",
    )


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


def read_config(sae: Any, app_id: str) -> dict[str, Any]:
    """The app's current configuration by wire name (secrets left out, however it reports them)."""
    request = sae_models.DescribeApplicationConfigRequest(app_id=app_id)
    data = call("sae:DescribeApplicationConfig", sae.describe_application_config, request)
    config = data.body.data.to_map() if data.body.data else {}
    return {
        k: v
        for k, v in config.items()
        if v not in (None, "", [], {}) and not sae_params.is_secret(k)
    }


# -- writing ---------------------------------------------------------------------------------------


def _request(model: type, params: dict[str, Any], **fixed: Any) -> Any:
    """A SDK request from wire-named values: text numbers and flags typed, secrets resolved."""
    wire: dict[str, Any] = {}
    for key, value in params.items():
        kind = sae_params.ALL_PARAMS[key].kind
        if sae_params.is_secret(key) and isinstance(value, dict):
            value = _secret_value(str(value["secret_block"]))
        elif kind == "int" and isinstance(value, str):
            value = int(value)
        elif kind == "bool" and isinstance(value, str):
            value = value.lower() == "true"
        wire[key] = value
    return sae_params.request(model, {**wire, **fixed})


def _secret_value(block: str) -> str:
    from prefect.blocks.system import Secret

    loaded = Secret.load(block)
    assert isinstance(loaded, Secret)
    return str(loaded.get())


def _created(
    state: ApplicationState, app_id: str, change_order_id: str | None
) -> ApplicationResult:
    where = f"{state.app_name} in {state.namespace_id}"
    changes = [Change("A", RESOURCE_TYPE, app_id, "created", where)]
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
    request = _request(sae_models.DeployApplicationRequest, params, AppId=app_id, Deploy="true")

    def send() -> str:
        return str(sae.deploy_application(request).body.data.change_order_id or "")

    def landed() -> str | None:
        """A lost reply: the app already has the new config, and its newest order is ours."""
        if differences(state.desired, read_config(sae, app_id)):
            return None
        listing = sae_models.ListChangeOrdersRequest(app_id=app_id, page_size=_PAGE_SIZE)
        data = call("sae:ListChangeOrders", sae.list_change_orders, listing).body.data
        orders = list(data.change_order_list or []) if data else []
        newest = max(orders, key=lambda o: str(o.create_time or ""), default=None)
        return str(newest.change_order_id) if newest else None

    deploy = partial(write_once, "sae:DeployApplication", send, landed=landed)
    change_order_id = _when_idle(creds_a, sae, app_id, wait_seconds, deploy) or None
    changes = [Change("A", RESOURCE_TYPE, app_id, "deployed", ", ".join(diffs))]
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
    """Run `write`; while another change order of the app runs (or SAE says the app's status
    does not allow it yet), wait for it and try again.

    An order left abnormal (SubStatus 1) is not waited on: it runs until someone rolls it back or
    aborts it, so the write is refused at once with its summary."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return write()
        except CloudError as exc:
            left = deadline - time.monotonic()
            if exc.code not in _BUSY or left <= 0:
                raise
        running = _running_order(sae, app_id)
        if running is None:
            time.sleep(min(1.0, left))
            continue
        other = follow_change_order(creds_a, running, timeout_seconds=left)
        if other.abnormal:
            raise RuntimeError(
                f"{other.summary()}\nThe app takes no other change until that order is rolled "
                f"back or aborted (SAE console: {other.console_url})."
            )


def _running_order(sae: Any, app_id: str) -> str | None:
    request = sae_models.DescribeApplicationStatusRequest(app_id=app_id)
    data = call("sae:DescribeApplicationStatus", sae.describe_application_status, request).body.data
    if data and data.last_change_order_running and data.last_change_order_id:
        return str(data.last_change_order_id)
    return None


def _converge(
    creds_a: AlibabaCloudCredentials,
    sae: Any,
    state: ApplicationState,
    app_id: str,
    wait_seconds: float,
) -> ApplicationResult:
    """CreateApplication failed and an app of that name is there: our own lost reply, or
    someone else's app.

    The same managed config and a create as its only change order mean the earlier attempt went
    through: ours, created. Otherwise it is an existing app, brought to the spec as any other.
    """
    diffs = differences(state.desired, read_config(sae, app_id))
    if diffs:
        return _deploy(creds_a, sae, state, app_id, diffs, wait_seconds)
    request = sae_models.ListChangeOrdersRequest(app_id=app_id, page_size=_PAGE_SIZE)
    data = call("sae:ListChangeOrders", sae.list_change_orders, request).body.data
    orders = list(data.change_order_list or []) if data else []
    if len(orders) == 1 and orders[0].co_type_code == "CoCreateApp":
        return _created(state, app_id, str(orders[0].change_order_id))
    return ApplicationResult(app_id, state.app_name, "unchanged", None)


# -- the step ------------------------------------------------------------------------------------


class ApplicationStep(Step[ApplicationState, ApplicationResult]):
    """The SAE app in account A, pulling with the role or the secret the steps before made."""

    name = "app"
    task_name = "application"
    account = "A"
    needs = (network.STEP.name, image.NAME, pull_role.NAME, registry_secret.STEP.name)
    reverses = frozenset({(RESOURCE_TYPE, "created")})

    def permissions(self, spec: DeploySpec, arns: Arns) -> Needs:
        """SAE's actions are "All Resources" (or undocumented: then `*` too, the stricter
        reading). Besides create or deploy: following the change order, verifying the app and
        the failure diagnosis (flows/diagnosis.py); a batch that waits is confirmed when
        batches are set, a refused one aborted when confirm is manual, and a failure rolled back
        when rollback_on_failure is on."""
        rollout = spec.rollout
        order = ("sae:DescribeChangeOrder", "sae:DescribePipeline", "sae:DescribeApplicationStatus")
        deploying = (
            "sae:CreateApplication",
            "sae:DeployApplication",
            "sae:ListChangeOrders",
            "sae:DescribeApplicationGroups",
            "sae:DescribeApplicationInstances",
        )
        batched = rollout.batches is not None or "UpdateStrategy" in spec.app.advanced
        rollback = (
            "sae:ListAppVersions",
            "sae:RollbackApplication",
            "sae:AbortAndRollbackChangeOrder",
        )
        aborts_only = rollout.confirm == "manual" and not rollout.rollback_on_failure
        return Needs(
            reads=grant(ALL, "sae:ListApplications", "sae:DescribeApplicationConfig"),
            writes=grant(ALL, *order, *deploying)
            + (grant(ALL, "sae:ConfirmPipelineBatch") if batched else ())
            + (grant(ALL, *rollback) if rollout.rollback_on_failure else ())
            + (grant(ALL, "sae:AbortChangeOrder") if aborts_only else ()),
            removes=grant(ALL, "sae:ListApplications", "sae:DeleteApplication", *order),
        )

    def inspect(self, accounts: Accounts, spec: DeploySpec, found: Inspection) -> ApplicationState:
        net, role = found.of(network.STEP), found.get(pull_role.STEP)
        secret = found.get(registry_secret.STEP)
        return inspect_application(
            accounts.app,
            spec,
            role_arn=role.role_arn if role else None,
            secret_id=secret.secret_id if secret else None,
            instance_id=found.of(image.STEP).instance_id,
            vpc_id=net.vpc_id or None,
            vswitch_id=net.vswitch_id or None,
            known=found.before(self),
        )

    def apply(self, accounts: Accounts, state: ApplicationState) -> ApplicationResult:
        return apply_application(accounts.app, state)

    def remove(self, accounts: Accounts, spec: DeploySpec, changes: list[Change]) -> list[Change]:
        return remove_application(
            accounts.app, changes, timeout_seconds=spec.rollout.timeout_seconds
        )

    def intents(self, state: ApplicationState) -> list[Intent]:
        if state.app_id is not None:
            return []  # a deploy is not undone by teardown
        where = f"{state.app_name} in {state.namespace_id}"
        evidence = {"name": state.app_name, "namespace": state.namespace_id}
        return [Intent(Change("A", RESOURCE_TYPE, UNASSIGNED, "created", where), evidence)]

    def confirm(self, accounts: Accounts, intent: Intent) -> list[Change]:
        """Ours when an app of our name is in our namespace."""
        sae = accounts.app.get_client("sae")
        found = find_application(sae, intent.evidence["name"], intent.evidence["namespace"])
        return [replace(intent.change, resource_id=found[0])] if found else []


STEP = ApplicationStep()
