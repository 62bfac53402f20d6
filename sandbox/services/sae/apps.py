"""SAE applications: create, deploy, roll back, stop, start, delete, and what they look like.

Every mutating call validates synchronously (the documented 4xx codes) and then starts a change
order; the engine carries it out in the background and calls back the `on_*` functions here to
change the application's instances. One change order runs per application at a time
(`Application.ChangerOrderRunning`).

The application document (kind `sae_app`, scope = account and region) keeps the configuration
as sent on the wire (`config`, by parameter name), the instances, the versions recorded by every
create or deploy that starts a release (listed whether it ran or not), which RollbackApplication
returns to, and the version the app last ran (`running_version`).

Codes the documentation does not give, chosen by the sandbox: a second application with the same
name in a namespace gets 400 `Application.AlreadyExists`.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from crossdeploy.sae_facts import CPU_FOR_MEMORY, MAX_REPLICAS, valid_app_name
from sandbox import api_meta, chosen_codes
from sandbox.call import Call
from sandbox.errors import ApiError
from sandbox.services.sae.change_orders import (
    CHANGE_ORDER,
    STATUS_NAMES,
    find_change_order,
    is_active,
    new_change_order,
    split_batches,
)
from sandbox.services.sae.namespaces import bind_namespace, find_namespace
from sandbox.store import Doc, Scope, Tx

APP = "sae_app"


def _contract_names(action: str) -> frozenset[str]:
    """The parameters Alibaba's API metadata lists for an action (sandbox/api_meta)."""
    apis = api_meta.load("sae", "2019-05-06")["apis"]
    return frozenset(p["name"] for p in apis[action]["parameters"])


CREATE_PARAMS = _contract_names("CreateApplication")
DEPLOY_PARAMS = _contract_names("DeployApplication")
_NOT_CONFIG = frozenset({"AppId", "Deploy", "ChangeOrderDesc", "AutoEnableApplicationScalingRule"})
_HIDDEN = frozenset({"OssAkSecret"})
"""Write-only parameters: stored, never returned."""

INT_FIELDS = frozenset(
    """BatchWaitTime Cpu DiskSize MaxSurgeInstanceRatio MaxSurgeInstances Memory
    MinReadyInstanceRatio MinReadyInstances Replicas TerminationGracePeriodSeconds""".split()
)
BOOL_FIELDS = frozenset(
    """AssociateEip AutoConfig EnableCpuBurst EnableGreyTagRoute EnableIdle
    EnableNamespaceAgentVersion EnableNamespaceSlsConfig EnableNewArms EnablePrometheus
    EnableSidecarResourceIsolated IsStateful""".split()
)
LIST_FIELDS = frozenset(
    """ConfigMapMountDesc EmptyDirDesc InitContainersConfig MountDesc OssMountDescs
    SidecarContainersConfig SecretMountDesc RaspConfig""".split()
)
JSON_FIELDS = LIST_FIELDS | frozenset(
    [
        "Envs",
        "CommandArgs",
        "Liveness",
        "Readiness",
        "StartupProbe",
        "PostStart",
        "PreStop",
        "UpdateStrategy",
        "SlsConfigs",
        "NasConfigs",
        "KafkaConfigs",
        "CustomHostAlias",
        "Labels",
        "MicroRegistrationConfig",
        "MicroserviceEngineConfig",
        "LokiConfigs",
        "GpuConfig",
    ]
)
EDITIONS = ("lite", "std", "pro")
"""NewSaeVersion: Lite, Standard and Professional Edition (reference A.1)."""
_PROBES = ("exec", "httpGet", "tcpSocket")

PACKAGE_TYPES = ("Image", "FatJar", "War", "PhpZip", "PythonZip", "DotnetZip")
PULL_BACKOFF_SECONDS = 10.0
"""After this long, a failed pull shows as ImagePullBackOff rather than ErrImagePull."""


def _ms(epoch: float) -> int:
    return int(epoch * 1000)


def _invalid(name: str, reason: str) -> ApiError:
    return ApiError(
        400, "InvalidParameter.WithMessage", f"The parameter is invalid {{{name}}}: {reason}"
    )


def _invalid_status() -> ApiError:
    return ApiError(
        400,
        "Application.InvalidStatus",
        "The application status is abnormal. Please try again later.",
    )


def _not_empty(name: str) -> ApiError:
    return ApiError(400, "InvalidParameter.NotEmpty", f"You must specify the parameter {name}.")


# -- lookups ---------------------------------------------------------------------------------------


def _regions(call: Call) -> list[str]:
    """Only the region the request addressed (sandbox/regions.py)."""
    return [call.region()]


def find_app(tx: Tx, scope: Scope, app_id: str) -> Doc | None:
    return tx.get(scope, APP, app_id)


def app_or_404(call: Call, *, not_found: str = "InvalidApplication.NotFound") -> tuple[Scope, Doc]:
    """The caller's application named by `AppId`: 404 `InvalidAppId.NotFound` for reads,
    400 `InvalidApplication.NotFound` for changes (reference 2.9)."""
    app_id = call.params.text("AppId")
    for region in _regions(call):
        app = call.tx.get(call.scope(region), APP, app_id)
        if app is not None:
            return call.scope(region), app
    if not_found == "InvalidAppId.NotFound":
        raise ApiError(404, not_found, "The specified AppId does not exist.")
    raise ApiError(400, not_found, "The current application does not exist.")


def namespace_of(tx: Tx, scope: Scope, app: Doc) -> Doc | None:
    return find_namespace(tx, scope.account, app["NamespaceId"])


def _running_order(tx: Tx, scope: Scope, app: Doc) -> Doc | None:
    last = app.get("last_change_order_id")
    if not last:
        return None
    found = find_change_order(tx, scope.account, last, [scope.region])
    return found[1] if found and is_active(found[1]) else None


def _require_idle(tx: Tx, scope: Scope, app: Doc) -> None:
    if _running_order(tx, scope, app) is not None:
        raise ApiError(
            400,
            "Application.ChangerOrderRunning",
            "An application change process is in progress. Please try again later.",
        )


# -- validation ------------------------------------------------------------------------------------


def _collect(call: Call, allowed: frozenset[str]) -> dict[str, str]:
    return {k: v for k, v in call.params.items() if k in allowed and k not in _NOT_CONFIG}


def _without_unset(config: dict[str, str]) -> dict[str, str]:
    """An empty JSON-valued parameter deletes that setting (as TomcatConfig's doc says: "")."""
    return {k: v for k, v in config.items() if not (k in JSON_FIELDS and not v.strip())}


def _check_json(config: Mapping[str, str]) -> None:
    for name in JSON_FIELDS & config.keys():
        try:
            value = json.loads(config[name])
        except ValueError:
            raise _invalid(name, "the value is not valid JSON") from None
        if name in LIST_FIELDS and not isinstance(value, list):
            raise _invalid(name, "the value must be a JSON array")
    if "Envs" in config:
        envs = json.loads(config["Envs"])
        if not isinstance(envs, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) and e["name"] for e in envs
        ):
            raise _invalid("Envs", 'expected a JSON array of {"name": ..., "value": ...}')
    if "CommandArgs" in config:
        args = json.loads(config["CommandArgs"])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise _invalid("CommandArgs", "expected a JSON array of strings")


def _int(config: Mapping[str, str], name: str) -> int | None:
    text = config.get(name, "")
    if text == "":
        return None
    if not re.fullmatch(r"-?\d{1,9}", text):
        raise _invalid(name, f"{text!r} is not an integer")
    return int(text)


def _check_config(config: Mapping[str, str]) -> None:
    """The documented synchronous checks on a complete configuration that the API metadata
    cannot express (types, ranges and required parameters were checked before the handler,
    sandbox/contract.py)."""
    package = config.get("PackageType", "")
    if package not in PACKAGE_TYPES and not package.startswith("IMAGE_PHP_"):
        raise ApiError(
            400, "InvalidPackageType.NotFound", "The package type must be War, FatJar, or Image."
        )
    if package != "Image":
        raise _invalid("PackageType", "the sandbox runs container images only (PackageType=Image)")
    # "This parameter is required when PackageType is set to Image" (ImageUrl, SDK model doc of
    # CreateApplication/DeployApplication, reference A.1); the sandbox runs images only.
    if not config.get("ImageUrl"):
        raise _not_empty("ImageUrl")
    # Cpu and Memory are optional (metadata); given, they must be one of the documented pairs
    # (reference 2.3, the instance specification table), so one without the other is refused.
    cpu, memory = _int(config, "Cpu"), _int(config, "Memory")
    if (cpu, memory) != (None, None) and cpu not in CPU_FOR_MEMORY.get(memory or 0, ()):
        raise ApiError(
            400,
            "InvalidInstanceSpecification.Unsupported",
            f"The instance specification is not supported: CPU [{cpu}], memory [{memory}].",
        )
    replicas = _int(config, "Replicas") or 0
    if replicas < 0:
        raise _invalid("Replicas", "must not be negative")
    if replicas > MAX_REPLICAS:
        raise ApiError(
            400,
            "NoComputeResourceQuota.App.Exceed",
            f"You can create {MAX_REPLICAS} instances for each application. Please submit a "
            "ticket to raise the quota.",
        )
    min_ready = _int(config, "MinReadyInstances")
    if min_ready is not None and replicas > 0 and min_ready >= replicas:
        raise ApiError(
            400,
            "MinReadyInstances.Not.Smaller.Replicas",
            "The minimum number of available instances must be less than the number of "
            "application instances.",
        )
    wait = _int(config, "BatchWaitTime")
    if wait is not None and wait < 0:
        raise ApiError(
            400, "BatchWaitTime.Not.Smaller.Zero", "BatchWaitTime must not be smaller than zero."
        )
    secret = config.get("ImagePullSecrets", "")
    if secret and not secret.isdigit():
        raise _invalid("ImagePullSecrets", "must be the numeric id of an SAE secret")
    _check_json(config)
    _check_documented(config)
    _rollout(config)


def _json_value(config: Mapping[str, str], name: str) -> Any:
    return json.loads(config[name]) if name in config else None


def _objects(config: Mapping[str, str], name: str, *keys: str) -> None:
    """A JSON array of objects, each with the documented `keys`."""
    value = _json_value(config, name)
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _invalid(name, "expected a JSON array of objects")
    for item in value:
        missing = [k for k in keys if k not in item]
        if missing:
            raise _invalid(name, f"each item needs {', '.join(missing)}")


def _check_documented(config: Mapping[str, str]) -> None:
    """The documented shapes of the console's advanced settings (reference A.1)."""
    edition = config.get("NewSaeVersion")
    if edition is not None and edition not in EDITIONS:
        raise _invalid("NewSaeVersion", "must be lite, std or pro")
    version = config.get("SaeVersion")
    if version is not None and version not in ("v1", "v2"):
        raise _invalid("SaeVersion", "must be v1 or v2")
    ratio = _int(config, "MinReadyInstanceRatio")
    if ratio is not None and not (ratio == -1 or 0 <= ratio <= 100):
        raise _invalid("MinReadyInstanceRatio", "must be -1 or from 0 to 100")
    for name in ("Liveness", "Readiness", "StartupProbe"):
        probe = _json_value(config, name)
        if probe is None:
            continue
        kinds = [k for k in _PROBES if isinstance(probe, dict) and k in probe]
        if len(kinds) != 1:
            raise _invalid(name, "expected exactly one of exec, httpGet or tcpSocket")
        if kinds[0] != "exec" and not isinstance(probe[kinds[0]].get("port"), int):
            raise _invalid(name, f"{kinds[0]}.port must be a port number")
    for name in ("PostStart", "PreStop"):
        hook = _json_value(config, name)
        command = hook.get("exec", {}).get("command") if isinstance(hook, dict) else None
        if hook is not None and not (
            isinstance(command, list) and all(isinstance(c, str) for c in command)
        ):
            raise _invalid(name, 'expected {"exec": {"command": [...]}}')
    _objects(config, "SlsConfigs", "logDir")
    _objects(config, "NasConfigs", "mountPath", "nasId")
    _objects(config, "OssMountDescs", "bucketName", "mountPath")
    _objects(config, "SidecarContainersConfig", "Name", "ImageUrl")
    _objects(config, "CustomHostAlias", "hostName", "ip")
    if "OssMountDescs" in config:
        for name in ("OssAkId", "OssAkSecret"):
            if not config.get(name):
                raise _not_empty(name)
    kafka = _json_value(config, "KafkaConfigs")
    if kafka is not None and not (isinstance(kafka, dict) and kafka.get("kafkaInstanceId")):
        raise _invalid("KafkaConfigs", "expected an object with kafkaInstanceId")
    zone = config.get("Timezone")
    if zone is not None and not re.fullmatch(r"[A-Za-z_]+(/[A-Za-z0-9_+-]+)*", zone):
        raise _invalid("Timezone", f"{zone!r} is not a time zone such as Asia/Shanghai")


def _rollout(config: Mapping[str, str]) -> tuple[int, str, float]:
    """(batches, release type, seconds to wait between batches) from UpdateStrategy."""
    if not config.get("UpdateStrategy"):
        return 1, "auto", 0.0
    strategy = json.loads(config["UpdateStrategy"])
    if not isinstance(strategy, dict) or strategy.get("type") not in (
        "BatchUpdate",
        "GrayBatchUpdate",
    ):
        raise _invalid("UpdateStrategy", 'type must be "BatchUpdate" or "GrayBatchUpdate"')
    batch = strategy.get("batchUpdate") or {}
    if not isinstance(batch, dict):
        raise _invalid("UpdateStrategy", "batchUpdate must be an object")
    count, release, wait = (
        batch.get("batch", 1),
        batch.get("releaseType", "auto"),
        batch.get("batchWaitTime", 0),
    )
    if not isinstance(count, int) or not 1 <= count <= MAX_REPLICAS:
        raise _invalid("UpdateStrategy", "batchUpdate.batch must be an integer from 1")
    if release not in ("auto", "manual"):
        raise _invalid("UpdateStrategy", 'batchUpdate.releaseType must be "auto" or "manual"')
    if not isinstance(wait, int | float) or wait < 0:
        raise _invalid("UpdateStrategy", "batchUpdate.batchWaitTime must be a non-negative number")
    gray = strategy.get("grayUpdate") or {}
    extra = (
        1
        if strategy["type"] == "GrayBatchUpdate" and isinstance(gray, dict) and gray.get("gray")
        else 0
    )
    return count + extra, str(release), float(wait) * 60.0


def _check_network(call: Call, namespace: Doc, config: dict[str, str]) -> None:
    """VpcId / VSwitchId / SecurityGroupId must be the namespace's (or omitted: filled in)."""
    vpc = config.get("VpcId") or namespace["VpcId"]
    if vpc != namespace["VpcId"]:
        owned = {
            v.id for r in call.world.regions.values() for v in r.vpcs if _owner(call, v.account)
        }
        if vpc not in owned:
            raise ApiError(404, "InvalidVpcId.NotFound", "The specified VpcId does not exist.")
        raise _invalid(
            "VpcId", f"namespace {namespace['NamespaceId']} is bound to {namespace['VpcId']}"
        )
    vswitch = config.get("VSwitchId") or namespace["VSwitchId"]
    region = call.world.regions[namespace["RegionId"]]
    world_vpc = next(v for v in region.vpcs if v.id == vpc)
    if vswitch not in {s.id for s in world_vpc.vswitches}:
        raise ApiError(400, "vswitch.not.exist", "The specified VSwitch does not exist.")
    group = config.get("SecurityGroupId") or namespace["SecurityGroupId"]
    if group not in world_vpc.security_groups:
        raise _invalid("SecurityGroupId", f"{group} is not a security group of {vpc}")
    config.update(VpcId=vpc, VSwitchId=vswitch, SecurityGroupId=group)


def _owner(call: Call, account_name: str) -> bool:
    return call.world.account(account_name).uid == call.caller.account


def _namespace_for(call: Call) -> Doc:
    # NamespaceId is optional (metadata): without it, the region's default namespace, whose id
    # is the region id (as DescribeNamespaceList lists it in this sandbox).
    namespace_id = call.params.text("NamespaceId") or call.region()
    if namespace_id != namespace_id.lower():
        raise ApiError(
            400,
            "InvalidNamespace.WithUppercase",
            "This namespace does not support creating SAE apps because it contains uppercase "
            "letters.",
        )
    namespace = find_namespace(call.tx, call.caller.account, namespace_id, call.world)
    if namespace is None or namespace["RegionId"] != call.region():
        raise ApiError(
            404, "InvalidNamespaceId.NotFound", "The specified NamespaceId does not exist."
        )
    return namespace


def _bind_default(call: Call, namespace: Doc, config: Mapping[str, str]) -> None:
    """The first app of an unbound default namespace names its VPC and vSwitch."""
    vpc, vswitch = config.get("VpcId", ""), config.get("VSwitchId", "")
    if not vpc:
        raise _not_empty("VpcId")
    if not vswitch:
        raise _not_empty("VSwitchId")
    region = call.world.regions[namespace["RegionId"]]
    world_vpc = next((v for v in region.vpcs if v.id == vpc and _owner(call, v.account)), None)
    if world_vpc is None:
        raise ApiError(404, "InvalidVpcId.NotFound", "The specified VpcId does not exist.")
    group = config.get("SecurityGroupId") or (world_vpc.security_groups or [""])[0]
    bind_namespace(call.tx, call.caller.account, namespace, vpc, vswitch, group)


# -- instances -------------------------------------------------------------------------------------


def _new_instances(
    tx: Tx, scope: Scope, app: Doc, image: str, count: int, status: str, at: float
) -> list[Doc]:
    vswitch = tx.get(scope, "vswitch", app["config"].get("VSwitchId", ""))
    network = ipaddress.IPv4Network(vswitch["CidrBlock"]) if vswitch else None
    made = []
    for _ in range(count):
        app["instance_seq"] = int(app.get("instance_seq", 0)) + 1
        address = str(network.network_address + 10 + app["instance_seq"]) if network else ""
        made.append(
            {
                "InstanceId": f"{app['AppName']}-{secrets.token_hex(5)}-{secrets.token_hex(3)[:5]}",
                "ImageUrl": image,
                "status": status,
                "since": at,
                "InstanceContainerIp": address,
                "VSwitchId": app["config"].get("VSwitchId", ""),
                "PackageVersion": app["config"].get("PackageVersion", ""),
            }
        )
    return made


def _save(tx: Tx, scope: Scope, app: Doc) -> None:
    tx.put(scope, APP, app["AppId"], app)


def on_pull_failed(tx: Tx, scope: Scope, order: Doc, batch: int, at: float) -> None:
    """New instances of the failed batch cannot pull; the old ones keep serving."""
    app = find_app(tx, scope, order["AppId"])
    if app is None:
        return
    running = [i for i in app["instances"] if i["status"] == "Running"]
    size = int(order["pipelines"][batch]["instances"])
    image = order["target"].get("ImageUrl", "")
    app["instances"] = running + _new_instances(tx, scope, app, image, size, "ErrImagePull", at)
    _save(tx, scope, app)


def on_batch_started(tx: Tx, scope: Scope, order: Doc, batch: int, at: float) -> None:
    """This batch's instances now run the target image, replacing as many old ones."""
    app = find_app(tx, scope, order["AppId"])
    if app is None:
        return
    size = int(order["pipelines"][batch]["instances"])
    image = order["target"].get("ImageUrl", "")
    fresh = [i for i in app["instances"] if i.get("order") == order["ChangeOrderId"]]
    old = [
        i
        for i in app["instances"]
        if i.get("order") != order["ChangeOrderId"] and i["status"] == "Running"
    ]
    started = _new_instances(tx, scope, app, image, size, "Running", at)
    for instance in started:
        instance["order"] = order["ChangeOrderId"]
    app["instances"] = old[size:] + fresh + started
    app["stopped"] = False
    _save(tx, scope, app)


def on_change_order_succeeded(tx: Tx, scope: Scope, order: Doc, now: float) -> None:
    app = find_app(tx, scope, order["AppId"])
    if app is None:
        return
    if order["kind"] in ("CoCreateApp", "CoDeploy", "CoRollback", "CoStartApplication"):
        target = order["target"]
        replicas = int(target.get("Replicas", "0"))
        keep = [i for i in app["instances"] if i.get("order") == order["ChangeOrderId"]][:replicas]
        missing = replicas - len(keep)
        app["instances"] = keep + _new_instances(
            tx, scope, app, target.get("ImageUrl", ""), missing, "Running", now
        )
        app["stopped"] = False
        if order.get("version"):
            app["running_version"] = order["version"]
    _save(tx, scope, app)


def on_stopped(tx: Tx, scope: Scope, order: Doc, at: float) -> None:
    app = find_app(tx, scope, order["AppId"])
    if app is not None:
        app["instances"] = []
        app["stopped"] = order["kind"] == "CoStopApplication"
        _save(tx, scope, app)


def on_deleted(tx: Tx, scope: Scope, order: Doc) -> None:
    tx.delete(scope, APP, order["AppId"])


# -- change-order starters -------------------------------------------------------------------------


def _start(
    call: Call,
    scope: Scope,
    app: Doc,
    co_type: str,
    target: dict[str, str],
    description: str = "",
    *,
    version: str | None = None,
) -> Doc:
    """Start a change order towards `target`; a create or deploy records a new version, a
    rollback names the `version` it returns to."""
    replicas = int(target.get("Replicas", "0") or 0)
    if co_type in ("CoDeploy", "CoRollback"):
        count, release, wait = _rollout(target)
        batches = split_batches(replicas, count)
    else:
        release, wait = "auto", 0.0
        batches = [replicas]
    order = new_change_order(
        call.tx,
        scope,
        app=app,
        co_type=co_type,
        target=target,
        batches=batches,
        release=release,
        batch_wait_s=wait * call.world.timing.minute_seconds / 60.0,
        total_seconds=call.world.timing.change_order_seconds,
        now=call.now,
        description=description,
    )
    if version is None and co_type in ("CoCreateApp", "CoDeploy"):
        version = _new_version(app, target, call.now)
    order["version"] = version
    call.tx.put(scope, CHANGE_ORDER, order["ChangeOrderId"], order)
    app["last_change_order_id"] = order["ChangeOrderId"]
    _save(call.tx, scope, app)
    return order


def _new_version(app: Doc, config: Mapping[str, str], now: float) -> str:
    """Record the version a release starts, before it is known whether it will run.

    ListAppVersions ("Lists the historical versions of an application",
    https://www.alibabacloud.com/help/en/sae/api-sae-2019-05-06-listappversions) has no status
    field in its documented response (Id, Type, CreateTime, BuildPackageUrl, WarUrl), and the
    docs do not say whether a failed deploy is listed: the stricter reading lists it, so a
    rollback target must be chosen, not taken as the newest entry.
    """
    app["version_seq"] = int(app.get("version_seq", 0)) + 1
    version_id = f"{app['AppId'][:8]}-v{app['version_seq']}"
    app["versions"].append({"Id": version_id, "CreateTime": str(_ms(now)), "config": dict(config)})
    return version_id


def roll_back_to_running_version(call: Call, scope: Scope, app_id: str) -> Doc | None:
    """Start a rollback to the version the app last ran (before the order being rolled back);
    None when it never ran one."""
    app = find_app(call.tx, scope, app_id)
    running = app.get("running_version") if app is not None else None
    version = next((v for v in app["versions"] if v["Id"] == running), None) if app else None
    if app is None or version is None:
        return None
    target = dict(version["config"])
    app["config"] = target
    return _start(call, scope, app, "CoRollback", target, version=version["Id"])


# -- handlers --------------------------------------------------------------------------------------


def create_application(call: Call) -> dict[str, Any]:
    name = call.params.text("AppName")
    if not valid_app_name(name):
        raise _invalid(
            "AppName",
            "use 1-36 letters, digits or hyphens, starting with a letter and not ending with "
            "a hyphen",
        )
    namespace = _namespace_for(call)
    config = _without_unset(_collect(call, CREATE_PARAMS))
    config["NamespaceId"] = namespace["NamespaceId"]
    _check_config(config)
    if not namespace["VpcId"]:
        _bind_default(call, namespace, config)
    _check_network(call, namespace, config)
    scope = Scope(call.caller.account, namespace["RegionId"])
    if any(
        a["AppName"] == name and a["NamespaceId"] == namespace["NamespaceId"]
        for a in call.tx.all(scope, APP)
    ):
        raise chosen_codes.APPLICATION_ALREADY_EXISTS.error(
            f"An application named {name} already exists in {namespace['NamespaceId']}."
        )
    app: Doc = {
        "AppId": str(uuid.uuid4()),
        "AppName": name,
        "NamespaceId": namespace["NamespaceId"],
        "RegionId": namespace["RegionId"],
        "CreateTime": _ms(call.now),
        "config": config,
        "instances": [],
        "versions": [],
        "stopped": True,
        "deleting": False,
        "last_change_order_id": "",
    }
    _save(call.tx, scope, app)
    change_order_id = ""
    if call.params.flag("Deploy", default=True):
        change_order_id = _start(call, scope, app, "CoCreateApp", dict(config))["ChangeOrderId"]
    return {"Data": {"AppId": app["AppId"], "ChangeOrderId": change_order_id}}


def deploy_application(call: Call) -> dict[str, Any]:
    scope, app = app_or_404(call)
    if app["deleting"]:
        raise _invalid_status()
    _require_idle(call.tx, scope, app)
    # A parameter given replaces the app's value whole; one not given keeps it. DeployApplication
    # (https://www.alibabacloud.com/help/en/sae/api-sae-2019-05-06-deployapplication) documents
    # SidecarContainersConfig / InitContainersConfig as the containers' configuration, and is
    # silent on an empty list: the stricter reading is that `[]` sets "none" and so removes the
    # sidecars or init containers set in the console. The official SDK sends such a list only
    # when the request model's field is not None (`deploy_application_with_options`).
    config = _without_unset({**app["config"], **_collect(call, DEPLOY_PARAMS)})
    _check_config(config)
    namespace = namespace_of(call.tx, scope, app)
    assert namespace is not None
    _check_network(call, namespace, config)
    app["config"] = config
    description = call.params.text("ChangeOrderDesc")
    if app["stopped"] and not call.params.flag("Deploy"):
        order = _start(call, scope, app, "CoConfigOnly", dict(config), description)
    elif app["stopped"]:
        order = _start(call, scope, app, "CoStartApplication", dict(config), description)
    else:
        order = _start(call, scope, app, "CoDeploy", dict(config), description)
    return {
        "Data": {
            "AppId": app["AppId"],
            "ChangeOrderId": order["ChangeOrderId"],
            "IsNeedApproval": False,
        }
    }


def rollback_application(call: Call) -> dict[str, Any]:
    scope, app = app_or_404(call)
    version_id = call.params.text("VersionId")
    version = next((v for v in app["versions"] if v["Id"] == version_id), None)
    if version is None:
        raise _invalid("VersionId", f"{version_id} is not a version of this application")
    _require_idle(call.tx, scope, app)
    target = dict(version["config"])
    overrides = {
        k: call.params.text(k)
        for k in ("MinReadyInstances", "UpdateStrategy", "BatchWaitTime")
        if call.params.text(k)
    }
    target.update(overrides)
    _check_config(target)
    app["config"] = target
    order = _start(call, scope, app, "CoRollback", target, version=version["Id"])
    return {"Data": {"ChangeOrderId": order["ChangeOrderId"], "IsNeedApproval": False}}


def stop_application(call: Call) -> dict[str, Any]:
    scope, app = app_or_404(call)
    _require_idle(call.tx, scope, app)
    if app["stopped"]:
        raise _invalid_status()
    order = _start(call, scope, app, "CoStopApplication", dict(app["config"]))
    return {"Data": {"ChangeOrderId": order["ChangeOrderId"]}}


def start_application(call: Call) -> dict[str, Any]:
    scope, app = app_or_404(call)
    _require_idle(call.tx, scope, app)
    if not app["stopped"]:
        raise _invalid_status()
    order = _start(call, scope, app, "CoStartApplication", dict(app["config"]))
    return {"Data": {"ChangeOrderId": order["ChangeOrderId"]}}


def delete_application(call: Call) -> dict[str, Any]:
    scope, app = app_or_404(call)
    _require_idle(call.tx, scope, app)
    app["deleting"] = True
    order = _start(call, scope, app, "CoDeleteApp", dict(app["config"]))
    return {"Data": {"ChangeOrderId": order["ChangeOrderId"]}}


# -- views -----------------------------------------------------------------------------------------


def _typed(name: str, value: str) -> Any:
    if name in INT_FIELDS:
        return int(value)
    if name in BOOL_FIELDS:
        return value.lower() == "true"
    if name in LIST_FIELDS:
        return json.loads(value)
    return value


def config_view(app: Doc, config: Mapping[str, str]) -> Doc:
    """DescribeApplicationConfig's Data: every stored parameter, typed as the SDK model says."""
    data: Doc = {k: _typed(k, v) for k, v in config.items() if k not in _HIDDEN and k != "Labels"}
    if "Labels" in config:
        labels = json.loads(config["Labels"])
        if isinstance(labels, dict):
            data["Labels"] = {k: str(v) for k, v in labels.items()}
            data["Tags"] = [{"Key": k, "Value": str(v)} for k, v in labels.items()]
    data.update(
        AppId=app["AppId"],
        AppName=app["AppName"],
        RegionId=app["RegionId"],
        NamespaceId=app["NamespaceId"],
    )
    return data


def describe_application_config(call: Call) -> dict[str, Any]:
    _, app = app_or_404(call, not_found="InvalidAppId.NotFound")
    version_id = call.params.text("VersionId")
    config = app["config"]
    if version_id:
        version = next((v for v in app["versions"] if v["Id"] == version_id), None)
        if version is None:
            raise _invalid("VersionId", f"{version_id} is not a version of this application")
        config = version["config"]
    return {"Data": config_view(app, config)}


def _container_status(instance: Doc, now: float) -> str:
    if (
        instance["status"] == "ErrImagePull"
        and now - float(instance["since"]) > PULL_BACKOFF_SECONDS
    ):
        return "ImagePullBackOff"
    return str(instance["status"])


def _running(app: Doc) -> int:
    return sum(1 for i in app["instances"] if i["status"] == "Running")


def describe_application_status(call: Call) -> dict[str, Any]:
    scope, app = app_or_404(call, not_found="InvalidAppId.NotFound")
    last = app.get("last_change_order_id") or ""
    found = find_change_order(call.tx, scope.account, last, [scope.region]) if last else None
    order = found[1] if found else None
    broken = any(i["status"] != "Running" for i in app["instances"])
    if app["stopped"]:
        current = "STOPPED"
    elif app["instances"]:
        current = "RUNNING"
    else:
        current = "UNKNOWN"
    return {
        "Data": {
            "AppId": app["AppId"],
            "CurrentStatus": current,
            "SubStatus": "RUNNING_BUT_HAS_ERROR" if broken and _running(app) else "NORMAL",
            "RunningInstances": _running(app),
            "LastChangeOrderId": last,
            "LastChangeOrderStatus": STATUS_NAMES.get(int(order["Status"]), "") if order else "",
            "LastChangeOrderRunning": bool(order and is_active(order)),
            "CreateTime": str(app["CreateTime"]),
            "ArmsAdvancedEnabled": "false",
            "EnableAgent": False,
            "FileSizeLimit": 0,
        }
    }


def _group_id(app: Doc) -> str:
    return f"{app['AppId']}-default"


def describe_application_groups(call: Call) -> dict[str, Any]:
    _, app = app_or_404(call, not_found="InvalidAppId.NotFound")
    config = app["config"]
    group = {
        "GroupId": _group_id(app),
        "GroupName": "_DEFAULT_GROUP",
        "GroupType": 0,
        "Replicas": int(config.get("Replicas", "0")),
        "RunningInstances": _running(app),
        "ImageUrl": config.get("ImageUrl", ""),
        "PackageType": config.get("PackageType", ""),
        "PackageVersion": config.get("PackageVersion", ""),
    }
    return {"Data": [group]}


def describe_application_instances(call: Call) -> dict[str, Any]:
    scope, app = app_or_404(call, not_found="InvalidAppId.NotFound")
    group_id = call.params.text("GroupId")
    if group_id != _group_id(app):
        raise _invalid("GroupId", f"{group_id} is not a group of this application")
    page = call.params.integer("CurrentPage", default=1, minimum=1)
    size = call.params.integer("PageSize", default=10, minimum=1, maximum=10000)
    wanted = call.params.text("InstanceId")
    pipeline_id = call.params.text("PipelineId")
    instances = [i for i in app["instances"] if not wanted or i["InstanceId"] == wanted]
    if pipeline_id:
        orders = {
            o["ChangeOrderId"]: o
            for o in call.tx.all(scope, CHANGE_ORDER)
            if o["AppId"] == app["AppId"]
        }
        instances = [
            i
            for i in instances
            if any(
                p["PipelineId"] == pipeline_id
                for p in orders.get(i.get("order", ""), {}).get("pipelines", [])
            )
        ]
    if call.params.flag("Reverse"):
        instances = list(reversed(instances))
    chunk = instances[(page - 1) * size : page * size]
    items = []
    for instance in chunk:
        status = _container_status(instance, call.now)
        items.append(
            {
                "InstanceId": instance["InstanceId"],
                "GroupId": _group_id(app),
                "ImageUrl": instance["ImageUrl"],
                "InstanceContainerStatus": status,
                "MainContainerStatus": status,
                "InstanceHealthStatus": "WithoutHealthCheckConfig"
                if status == "Running"
                else "Unhealthy",
                "InstanceContainerRestarts": 0,
                "InstanceContainerIp": instance["InstanceContainerIp"],
                "VSwitchId": instance["VSwitchId"],
                "CreateTimeStamp": _ms(float(instance["since"])),
                "Timestamp": _ms(float(instance["since"])),
                "PackageVersion": instance["PackageVersion"],
                "UnhealthyMessage": ""
                if status == "Running"
                else f'Back-off pulling image "{instance["ImageUrl"]}"',
                "TrafficStatus": "",
                "DebugStatus": False,
            }
        )
    return {
        "Data": {
            "Instances": items,
            "CurrentPage": page,
            "PageSize": size,
            "TotalSize": len(instances),
        }
    }


def list_app_versions(call: Call) -> dict[str, Any]:
    _, app = app_or_404(call, not_found="InvalidAppId.NotFound")
    versions = [
        {
            "Id": v["Id"],
            "Type": "image",
            "CreateTime": v["CreateTime"],
            "BuildPackageUrl": v["config"].get("ImageUrl", ""),
            "WarUrl": "",
        }
        for v in reversed(app["versions"])
    ]
    return {"Data": versions}


def list_applications(call: Call) -> dict[str, Any]:
    """AppName matches as a substring, as the console's search does: filter for the exact name."""
    page = call.params.integer("CurrentPage", default=1, minimum=1)
    size = call.params.integer("PageSize", default=10, minimum=0, maximum=10000)
    name = call.params.text("AppName")
    namespace_id = call.params.text("NamespaceId")
    field, value = call.params.text("FieldType"), call.params.text("FieldValue")
    apps = [a for region in _regions(call) for a in call.tx.all(call.scope(region), APP)]
    if namespace_id:
        apps = [a for a in apps if a["NamespaceId"] == namespace_id]
    if name:
        apps = [a for a in apps if name in a["AppName"]]
    if field == "appName" and value:
        apps = [a for a in apps if value in a["AppName"]]
    elif field == "appIds" and value:
        ids = set(value.split(","))
        apps = [a for a in apps if a["AppId"] in ids]
    chunk = apps[(page - 1) * size : page * size] if size else []
    items = []
    for app in chunk:
        config = app["config"]
        items.append(
            {
                "AppId": app["AppId"],
                "AppName": app["AppName"],
                "AppDescription": config.get("AppDescription", ""),
                "NamespaceId": app["NamespaceId"],
                "NamespaceName": app["NamespaceId"].partition(":")[2] or app["NamespaceId"],
                "RegionId": app["RegionId"],
                "Cpu": int(config.get("Cpu", "0")),
                "Mem": int(config.get("Memory", "0")),
                "Instances": int(config.get("Replicas", "0")),
                "RunningInstances": _running(app),
                "ImageUrl": config.get("ImageUrl", ""),
                "PackageUrl": "",
                "VpcId": config.get("VpcId", ""),
                "AppDeletingStatus": bool(app["deleting"]),
                "Tags": [],
            }
        )
    paging = {"CurrentPage": page, "PageSize": size, "TotalSize": len(apps)}
    return {"Data": {"Applications": items, **paging}, **paging}


def apps_in_namespace(tx: Tx, account: str, namespace: Doc) -> list[Doc]:
    return [
        a
        for a in tx.all(Scope(account, namespace["RegionId"]), APP)
        if a["NamespaceId"] == namespace["NamespaceId"]
    ]


def describe_namespace_resources(call: Call) -> dict[str, Any]:
    """DescribeNamespaceResources: a namespace's network plus its applications' activity."""
    from sandbox.services.sae.namespaces import namespace_or_404

    namespace = namespace_or_404(call)
    scope = Scope(call.caller.account, namespace["RegionId"])
    apps = apps_in_namespace(call.tx, call.caller.account, namespace)
    orders = [
        o for o in call.tx.all(scope, CHANGE_ORDER) if o["AppId"] in {a["AppId"] for a in apps}
    ]
    last = orders[-1] if orders else None
    keys = (
        "NamespaceId",
        "NamespaceName",
        "NameSpaceShortId",
        "VpcId",
        "VSwitchId",
        "SecurityGroupId",
    )
    return {
        "Data": {
            **{k: namespace[k] for k in keys},
            "BelongRegion": namespace["RegionId"],
            "Description": namespace.get("NamespaceDescription", ""),
            "AppCount": len(apps),
            "LastChangeOrderId": last["ChangeOrderId"] if last else "",
            "LastChangeOrderRunning": bool(last and is_active(last)),
            "LastChangeOrderStatus": STATUS_NAMES.get(int(last["Status"]), "") if last else "",
            "TenantId": call.caller.account,
            "UserId": call.caller.account,
        }
    }
