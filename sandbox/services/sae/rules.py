"""SAE application parameters: the tables learned from the API metadata and the synchronous
checks CreateApplication, DeployApplication and RollbackApplication run before a change order
starts (the documented 4xx codes, each check citing where Alibaba documents it).

The contract (sandbox/contract.py) has already checked types, ranges and required parameters
against the metadata; these are the checks the metadata cannot express.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from crossdeploy.sae_facts import CPU_FOR_MEMORY, MAX_REPLICAS
from sandbox import api_meta
from sandbox.call import Call
from sandbox.errors import ApiError
from sandbox.services.sae.documents import Config, Namespace
from sandbox.services.sae.namespaces import bind_namespace, find_namespace


def _contract_names(action: str) -> frozenset[str]:
    """The parameters Alibaba's API metadata lists for an action (sandbox/api_meta)."""
    apis = api_meta.load("sae", "2019-05-06")["apis"]
    return frozenset(p["name"] for p in apis[action]["parameters"])


CREATE_PARAMS = _contract_names("CreateApplication")
DEPLOY_PARAMS = _contract_names("DeployApplication")
_NOT_CONFIG = frozenset({"AppId", "Deploy", "ChangeOrderDesc", "AutoEnableApplicationScalingRule"})
HIDDEN = frozenset({"OssAkSecret"})
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


def invalid(name: str, reason: str) -> ApiError:
    return ApiError(
        400, "InvalidParameter.WithMessage", f"The parameter is invalid {{{name}}}: {reason}"
    )


def invalid_status() -> ApiError:
    return ApiError(
        400,
        "Application.InvalidStatus",
        "The application status is abnormal. Please try again later.",
    )


def not_empty(name: str) -> ApiError:
    return ApiError(400, "InvalidParameter.NotEmpty", f"You must specify the parameter {name}.")


# -- validation ------------------------------------------------------------------------------------


def collect(call: Call, allowed: frozenset[str]) -> Config:
    return {k: v for k, v in call.params.items() if k in allowed and k not in _NOT_CONFIG}


def without_unset(config: Config) -> Config:
    """An empty JSON-valued parameter deletes that setting (as TomcatConfig's doc says: "")."""
    return {k: v for k, v in config.items() if not (k in JSON_FIELDS and not v.strip())}


def _check_json(config: Mapping[str, str]) -> None:
    for name in JSON_FIELDS & config.keys():
        try:
            value = json.loads(config[name])
        except ValueError:
            raise invalid(name, "the value is not valid JSON") from None
        if name in LIST_FIELDS and not isinstance(value, list):
            raise invalid(name, "the value must be a JSON array")
    if "Envs" in config:
        envs = json.loads(config["Envs"])
        if not isinstance(envs, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) and e["name"] for e in envs
        ):
            raise invalid("Envs", 'expected a JSON array of {"name": ..., "value": ...}')
    if "CommandArgs" in config:
        args = json.loads(config["CommandArgs"])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise invalid("CommandArgs", "expected a JSON array of strings")


def _int(config: Mapping[str, str], name: str) -> int | None:
    text = config.get(name, "")
    if text == "":
        return None
    if not re.fullmatch(r"-?\d{1,9}", text):
        raise invalid(name, f"{text!r} is not an integer")
    return int(text)


def check_config(config: Mapping[str, str]) -> None:
    """The documented synchronous checks on a complete configuration that the API metadata
    cannot express (types, ranges and required parameters were checked before the handler,
    sandbox/contract.py)."""
    package = config.get("PackageType", "")
    if package not in PACKAGE_TYPES and not package.startswith("IMAGE_PHP_"):
        raise ApiError(
            400, "InvalidPackageType.NotFound", "The package type must be War, FatJar, or Image."
        )
    if package != "Image":
        raise invalid("PackageType", "the sandbox runs container images only (PackageType=Image)")
    # "This parameter is required when PackageType is set to Image" (ImageUrl, SDK model doc of
    # CreateApplication/DeployApplication, reference A.1); the sandbox runs images only.
    if not config.get("ImageUrl"):
        raise not_empty("ImageUrl")
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
        raise invalid("Replicas", "must not be negative")
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
        raise invalid("ImagePullSecrets", "must be the numeric id of an SAE secret")
    _check_json(config)
    _check_documented(config)
    rollout(config)


def _json_value(config: Mapping[str, str], name: str) -> Any:
    return json.loads(config[name]) if name in config else None


def _objects(config: Mapping[str, str], name: str, *keys: str) -> None:
    """A JSON array of objects, each with the documented `keys`."""
    value = _json_value(config, name)
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise invalid(name, "expected a JSON array of objects")
    for item in value:
        missing = [k for k in keys if k not in item]
        if missing:
            raise invalid(name, f"each item needs {', '.join(missing)}")


def _check_documented(config: Mapping[str, str]) -> None:
    """The documented shapes of the console's advanced settings (reference A.1)."""
    edition = config.get("NewSaeVersion")
    if edition is not None and edition not in EDITIONS:
        raise invalid("NewSaeVersion", "must be lite, std or pro")
    version = config.get("SaeVersion")
    if version is not None and version not in ("v1", "v2"):
        raise invalid("SaeVersion", "must be v1 or v2")
    ratio = _int(config, "MinReadyInstanceRatio")
    if ratio is not None and not (ratio == -1 or 0 <= ratio <= 100):
        raise invalid("MinReadyInstanceRatio", "must be -1 or from 0 to 100")
    for name in ("Liveness", "Readiness", "StartupProbe"):
        probe = _json_value(config, name)
        if probe is None:
            continue
        kinds = [k for k in _PROBES if isinstance(probe, dict) and k in probe]
        if len(kinds) != 1:
            raise invalid(name, "expected exactly one of exec, httpGet or tcpSocket")
        if kinds[0] != "exec" and not isinstance(probe[kinds[0]].get("port"), int):
            raise invalid(name, f"{kinds[0]}.port must be a port number")
    for name in ("PostStart", "PreStop"):
        hook = _json_value(config, name)
        command = hook.get("exec", {}).get("command") if isinstance(hook, dict) else None
        if hook is not None and not (
            isinstance(command, list) and all(isinstance(c, str) for c in command)
        ):
            raise invalid(name, 'expected {"exec": {"command": [...]}}')
    _objects(config, "SlsConfigs", "logDir")
    _objects(config, "NasConfigs", "mountPath", "nasId")
    _objects(config, "OssMountDescs", "bucketName", "mountPath")
    _objects(config, "SidecarContainersConfig", "Name", "ImageUrl")
    _objects(config, "CustomHostAlias", "hostName", "ip")
    if "OssMountDescs" in config:
        for name in ("OssAkId", "OssAkSecret"):
            if not config.get(name):
                raise not_empty(name)
    kafka = _json_value(config, "KafkaConfigs")
    if kafka is not None and not (isinstance(kafka, dict) and kafka.get("kafkaInstanceId")):
        raise invalid("KafkaConfigs", "expected an object with kafkaInstanceId")
    zone = config.get("Timezone")
    if zone is not None and not re.fullmatch(r"[A-Za-z_]+(/[A-Za-z0-9_+-]+)*", zone):
        raise invalid("Timezone", f"{zone!r} is not a time zone such as Asia/Shanghai")


def rollout(config: Mapping[str, str]) -> tuple[int, str, float]:
    """(batches, release type, seconds to wait between batches) from UpdateStrategy."""
    if not config.get("UpdateStrategy"):
        return 1, "auto", 0.0
    strategy = json.loads(config["UpdateStrategy"])
    if not isinstance(strategy, dict) or strategy.get("type") not in (
        "BatchUpdate",
        "GrayBatchUpdate",
    ):
        raise invalid("UpdateStrategy", 'type must be "BatchUpdate" or "GrayBatchUpdate"')
    batch = strategy.get("batchUpdate") or {}
    if not isinstance(batch, dict):
        raise invalid("UpdateStrategy", "batchUpdate must be an object")
    count, release, wait = (
        batch.get("batch", 1),
        batch.get("releaseType", "auto"),
        batch.get("batchWaitTime", 0),
    )
    if not isinstance(count, int) or not 1 <= count <= MAX_REPLICAS:
        raise invalid("UpdateStrategy", "batchUpdate.batch must be an integer from 1")
    if release not in ("auto", "manual"):
        raise invalid("UpdateStrategy", 'batchUpdate.releaseType must be "auto" or "manual"')
    if not isinstance(wait, int | float) or wait < 0:
        raise invalid("UpdateStrategy", "batchUpdate.batchWaitTime must be a non-negative number")
    gray = strategy.get("grayUpdate") or {}
    extra = (
        1
        if strategy["type"] == "GrayBatchUpdate" and isinstance(gray, dict) and gray.get("gray")
        else 0
    )
    return count + extra, str(release), float(wait) * 60.0


def check_network(call: Call, namespace: Namespace, config: Config) -> None:
    """VpcId / VSwitchId / SecurityGroupId must be the namespace's (or omitted: filled in)."""
    vpc = config.get("VpcId") or namespace["VpcId"]
    if vpc != namespace["VpcId"]:
        owned = {
            v.id for r in call.world.regions.values() for v in r.vpcs if _owner(call, v.account)
        }
        if vpc not in owned:
            raise ApiError(404, "InvalidVpcId.NotFound", "The specified VpcId does not exist.")
        raise invalid(
            "VpcId", f"namespace {namespace['NamespaceId']} is bound to {namespace['VpcId']}"
        )
    vswitch = config.get("VSwitchId") or namespace["VSwitchId"]
    region = call.world.regions[namespace["RegionId"]]
    world_vpc = next(v for v in region.vpcs if v.id == vpc)
    if vswitch not in {s.id for s in world_vpc.vswitches}:
        raise ApiError(400, "vswitch.not.exist", "The specified VSwitch does not exist.")
    group = config.get("SecurityGroupId") or namespace["SecurityGroupId"]
    if group not in world_vpc.security_groups:
        raise invalid("SecurityGroupId", f"{group} is not a security group of {vpc}")
    config.update(VpcId=vpc, VSwitchId=vswitch, SecurityGroupId=group)


def _owner(call: Call, account_name: str) -> bool:
    return call.world.account(account_name).uid == call.caller.account


def namespace_for(call: Call) -> Namespace:
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


def bind_default(call: Call, namespace: Namespace, config: Mapping[str, str]) -> None:
    """The first app of an unbound default namespace names its VPC and vSwitch."""
    vpc, vswitch = config.get("VpcId", ""), config.get("VSwitchId", "")
    if not vpc:
        raise not_empty("VpcId")
    if not vswitch:
        raise not_empty("VSwitchId")
    region = call.world.regions[namespace["RegionId"]]
    world_vpc = next((v for v in region.vpcs if v.id == vpc and _owner(call, v.account)), None)
    if world_vpc is None:
        raise ApiError(404, "InvalidVpcId.NotFound", "The specified VpcId does not exist.")
    group = config.get("SecurityGroupId") or (world_vpc.security_groups or [""])[0]
    bind_namespace(call.tx, call.caller.account, namespace, vpc, vswitch, group)
