"""The deploy spec (contract: shared/contracts/interfaces.md section 2), also the flow's parameter.

Every problem is reported at once, each with its field path and what would be valid, before
any API call is made.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from crossdeploy.image_ref import ImageRef, parse_image
from crossdeploy.sae_facts import CPU_FOR_MEMORY, MAX_REPLICAS, SAE_REGIONS, memory_choices_for
from crossdeploy.sae_params import ALL_PARAMS, ParamError, is_secret, to_wire

_REGION = re.compile(r"^[a-z]{2}-[a-z0-9]+(?:-[a-z0-9]+)*$")
_NAMESPACE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_RAM_NAME = re.compile(r"^[a-zA-Z0-9.-]{1,64}$")
_POLICY_NAME = re.compile(r"^[a-zA-Z0-9-]{1,128}$")
_INSTANCE_ID = re.compile(r"^cri-[a-z0-9]+$|^cri-[a-z0-9-]+$")
_BLOCK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_FIELD_PREFIXES = (
    "instance_id: ",
    "registry_login: ",
    "image.url: ",
    "batches: ",
    "batch_wait_minutes: ",
    "rollout.batches: ",
    "app.advanced.UpdateStrategy: ",
)
_ADVANCED_MARK = "\x00"
"""Separates the per-parameter problems of app.advanced inside one validation message."""

SPEC_OWNED = {
    "AppName": "app.name",
    "AppId": "app.name",
    "NamespaceId": "app.namespace",
    "PackageType": "image.url",
    "ImageUrl": "image.url",
    "AcrInstanceId": "image.instance_id",
    "AcrAssumeRoleArn": "access",
    "ImagePullSecrets": "access",
    "Cpu": "app.cpu",
    "Memory": "app.memory",
    "Replicas": "app.replicas",
    "Command": "app.command",
    "CommandArgs": "app.args",
    "Envs": "app.envs",
    "NewSaeVersion": "app.edition",
    "SaeVersion": "app.edition",
    "VpcId": "app.vpc_id",
    "VSwitchId": "app.vswitch_id",
    "SecurityGroupId": "app.security_group_id",
    "Deploy": "(set by the run)",
    "AutoConfig": "app.namespace with app.vpc_id and app.vswitch_id",
}
"""Parameters the spec sets through its own fields: app.advanced may not give them."""


def advanced_problems(advanced: dict[str, Any]) -> list[str]:
    """`Name: problem` for every app.advanced entry the SDK's request models cannot take."""
    problems = []
    for name, value in advanced.items():
        if name in SPEC_OWNED:
            problems.append(f"{name}: set by {SPEC_OWNED[name]}, not app.advanced")
        elif name not in ALL_PARAMS:
            close = difflib.get_close_matches(name, list(ALL_PARAMS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{name}: not a CreateApplication or DeployApplication parameter{hint}")
        elif is_secret(name):
            block = value.get("secret_block") if isinstance(value, dict) else None
            if not isinstance(block, str) or len(value) != 1 or not _BLOCK_NAME.match(block):
                problems.append(
                    f"{name}: a secret is not written in the spec (the run's parameters are "
                    "shown); save it as a Prefect Secret block and give {secret_block: NAME}"
                )
        else:
            try:
                to_wire(ALL_PARAMS[name], value)
            except ParamError as exc:
                problems.append(f"{name}{exc.path}: {exc}")
    return problems


def advanced_wire(advanced: dict[str, Any]) -> dict[str, Any]:
    """app.advanced as the SDK models take it (validated by the spec already); a secret stays
    a `{secret_block: NAME}` reference, resolved only when the request is sent."""
    return {
        name: dict(value) if is_secret(name) else to_wire(ALL_PARAMS[name], value)
        for name, value in advanced.items()
    }


def lowercase_name(value: str, *, longest: int) -> str:
    """`value` if it is 1-`longest` lowercase letters, digits or hyphens, starting with a letter
    and not ending with a hyphen (SAE app names, fleet names); ValueError saying so otherwise."""
    if not re.fullmatch(rf"[a-z][a-z0-9-]{{0,{longest - 1}}}", value) or value.endswith("-"):
        raise ValueError(
            f"{value!r} must be 1-{longest} lowercase letters, digits or hyphens, starting with a "
            "letter and not ending with a hyphen"
        )
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Accounts(_Strict):
    app: str = Field(
        title="Account A block (runs SAE)",
        description="AlibabaCloudCredentials block of account A, which runs SAE.",
    )
    registry: str = Field(
        title="Account B block (owns the image)",
        description="AlibabaCloudCredentials block of account B, owner of the image.",
    )

    @field_validator("app", "registry")
    @classmethod
    def _block_name(cls, value: str) -> str:
        if not _BLOCK_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a Prefect block name (lowercase letters, digits, -)"
            )
        return value


class AppSpec(_Strict):
    name: str = Field(title="App name", description="SAE application name (AppName).")
    region: str = Field(
        title="Region", description="Region of the SAE application, e.g. cn-hangzhou."
    )
    namespace: str | None = Field(
        default=None,
        title="Namespace ID",
        description="SAE namespace id, <region>:<name>; omitted: the region's default.",
    )
    cpu: int = Field(default=1000, title="CPU (millicores)", description="Millicores per instance.")
    memory: int = Field(default=2048, title="Memory (MiB)", description="MiB per instance.")
    replicas: int = Field(default=1, title="Replicas", description="Number of instances.")
    command: str | None = Field(
        default=None, title="Command", description="Overrides the image's entrypoint."
    )
    args: list[str] | None = Field(
        default=None, title="Command arguments", description="Arguments for the command."
    )
    envs: dict[str, str] = Field(
        default_factory=dict, title="Environment variables", description="Environment variables."
    )
    edition: Literal["lite", "std", "pro"] | None = Field(
        default=None,
        title="Application edition",
        description="SAE edition: lite, std (standard) or pro (professional); omitted: SAE's.",
    )
    vpc_id: str | None = Field(
        default=None,
        title="VPC ID",
        description="The namespace's VPC; required for a default namespace not yet bound to one.",
    )
    vswitch_id: str | None = Field(
        default=None,
        title="vSwitch ID",
        description="vSwitch of the instances, in that VPC; omitted: the namespace's.",
    )
    security_group_id: str | None = Field(
        default=None,
        title="Security group ID",
        description="Security group of the instances; omitted: the namespace's.",
    )
    advanced: dict[str, Any] = Field(
        default_factory=dict,
        title="Advanced settings",
        description=(
            "Any other CreateApplication / DeployApplication parameter by its API name "
            "(Liveness, Readiness, SlsConfigs, NasConfigs, OssMountDescs, Timezone, ...); "
            "JSON-valued ones as an object, a list or JSON text."
        ),
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return lowercase_name(value, longest=36)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError(f"{value!r} is not a region id such as cn-hangzhou")
        if value not in SAE_REGIONS:
            raise ValueError(f"SAE does not run in {value!r}; use one of {', '.join(SAE_REGIONS)}")
        return value

    @field_validator("replicas")
    @classmethod
    def _replicas(cls, value: int) -> int:
        if not 1 <= value <= MAX_REPLICAS:
            raise ValueError(f"{value} is not between 1 and {MAX_REPLICAS}")
        return value

    @field_validator("envs")
    @classmethod
    def _envs(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not _ENV_NAME.match(k)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a valid environment variable name")
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: int, info: ValidationInfo) -> int:
        cpu = info.data.get("cpu")
        if value not in CPU_FOR_MEMORY:
            sizes = ", ".join(str(m) for m in CPU_FOR_MEMORY)
            raise ValueError(f"{value} MiB is not offered; choose one of {sizes}")
        if cpu is not None and cpu not in CPU_FOR_MEMORY[value]:
            choices = memory_choices_for(cpu)
            hint = (
                f"with {cpu} millicores choose {' or '.join(map(str, choices))}"
                if choices
                else f"{cpu} millicores is not offered at all"
            )
            raise ValueError(f"{value} MiB is not offered with app.cpu {cpu}; {hint}")
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        region, _, name = value.partition(":")
        if "region" in info.data and region != info.data["region"]:
            raise ValueError(f"{value!r} is not in app.region {info.data['region']}")
        if name and not _NAMESPACE_NAME.match(name):
            raise ValueError(
                f"{name!r} must be lowercase letters, digits or hyphens, starting with a letter"
            )
        return value

    @field_validator("vpc_id", "vswitch_id", "security_group_id")
    @classmethod
    def _network_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        prefix = {"vpc_id": "vpc-", "vswitch_id": "vsw-", "security_group_id": "sg-"}
        wanted = prefix[str(info.field_name)]
        if value is not None and not re.fullmatch(re.escape(wanted) + r"[a-z0-9-]+", value):
            raise ValueError(f"{value!r} is not an id of the form {wanted}...")
        return value

    @field_validator("advanced")
    @classmethod
    def _advanced(cls, value: dict[str, Any]) -> dict[str, Any]:
        problems = advanced_problems(value)
        if problems:
            raise ValueError(_ADVANCED_MARK + _ADVANCED_MARK.join(problems))
        return value

    @property
    def namespace_id(self) -> str:
        return self.namespace or self.region

    @property
    def default_namespace(self) -> bool:
        """The region's system-created namespace (its id is the region id)."""
        return self.namespace_id == self.region


class ImageSpec(_Strict):
    url: str = Field(
        title="Image URL",
        description="Image address in account B's registry, host/namespace/repo:tag.",
    )
    instance_id: str | None = Field(
        default=None,
        title="ACR instance ID",
        description="ACR Enterprise Edition instance id; omit for Personal Edition.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parse_image(value)
        if ":" not in value.partition("/")[2]:
            raise ValueError(
                "no tag: name the tag to deploy (host/namespace/repo:tag); latest is never assumed"
            )
        return value

    @field_validator("instance_id")
    @classmethod
    def _instance(cls, value: str | None) -> str | None:
        if value is not None and not _INSTANCE_ID.match(value):
            raise ValueError(f"{value!r} is not an ACR instance id (cri-...)")
        return value

    @model_validator(mode="after")
    def _edition(self) -> ImageSpec:
        ref = parse_image(self.url)
        if ref.edition == "personal" and self.instance_id is not None:
            raise ValueError(
                f"instance_id: given, but {ref.host} is a Personal Edition address (omit it)"
            )
        return self

    @property
    def ref(self) -> ImageRef:
        return parse_image(self.url)


class AccessSpec(_Strict):
    method: Literal["ram-role", "secret"] = Field(
        default="ram-role",
        title="Pull access method",
        description="ram-role: SAE assumes a role in account B; secret: a stored registry login.",
    )
    role_name: str | None = Field(
        default=None, title="Pull role name", description="Role in account B (ram-role)."
    )
    policy_name: str | None = Field(
        default=None, title="Pull policy name", description="Pull policy in account B (ram-role)."
    )
    exclusive_trust: bool = Field(
        default=False,
        title="Exclusive trust policy",
        description="Replace the role's trust policy instead of merging into it.",
    )
    registry_login: str | None = Field(
        default=None,
        title="Registry login block",
        description="AcrRegistryLogin block with the registry login (secret).",
    )

    @field_validator("role_name")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is not None and not _RAM_NAME.match(value):
            raise ValueError(f"{value!r} must be 1-64 letters, digits, '.' or '-'")
        return value

    @field_validator("policy_name")
    @classmethod
    def _policy(cls, value: str | None) -> str | None:
        if value is not None and not _POLICY_NAME.match(value):
            raise ValueError(f"{value!r} must be 1-128 letters, digits or '-'")
        return value

    @model_validator(mode="after")
    def _method(self) -> AccessSpec:
        if self.method == "secret" and not self.registry_login:
            raise ValueError("registry_login: required with method: secret")
        if self.method == "ram-role" and self.registry_login:
            raise ValueError("registry_login: only used with method: secret")
        return self


class NetworkSpec(_Strict):
    whitelist: Literal["auto", "eip", "vpc-cidr", "none"] = Field(
        default="auto",
        title="Registry whitelist",
        description="What to add to the registry whitelist: auto picks from the network path.",
    )


class RolloutSpec(_Strict):
    timeout_seconds: int = Field(
        default=1200,
        ge=60,
        le=7200,
        title="Timeout (seconds)",
        description="Change order timeout.",
    )
    rollback_on_failure: bool = Field(
        default=True,
        title="Roll back on failure",
        description="Roll back to the last good version when the deploy fails.",
    )
    batches: int | None = Field(
        default=None,
        ge=1,
        le=MAX_REPLICAS,
        title="Batches",
        description="Release in this many batches (batch release); omitted: SAE's strategy.",
    )
    batch_wait_minutes: int = Field(
        default=0,
        ge=0,
        le=1440,
        title="Wait between batches (minutes)",
        description="With confirm auto: minutes SAE waits before starting the next batch.",
    )
    confirm: Literal["auto", "manual"] = Field(
        default="auto",
        title="Next batch",
        description=(
            "auto: batches follow each other, and the run confirms any batch that waits for "
            "confirmation; manual: a person confirms each batch in the SAE console."
        ),
    )

    @model_validator(mode="after")
    def _batches(self) -> RolloutSpec:
        if self.batches is None and (self.batch_wait_minutes or self.confirm == "manual"):
            raise ValueError("batches: required with batch_wait_minutes or confirm: manual")
        if self.confirm == "manual" and self.batch_wait_minutes:
            raise ValueError("batch_wait_minutes: only used with confirm: auto")
        return self

    def update_strategy(self) -> str | None:
        """SAE's UpdateStrategy for the batch release, or None when the spec sets none."""
        if self.batches is None:
            return None
        batch: dict[str, Any] = {"batch": self.batches, "releaseType": self.confirm}
        if self.confirm == "auto":
            batch["batchWaitTime"] = self.batch_wait_minutes
        return json.dumps({"type": "BatchUpdate", "batchUpdate": batch}, separators=(",", ":"))


class DeploySpec(_Strict):
    """Deploy one SAE application in account A from an image in account B's registry."""

    accounts: Accounts = Field(
        title="Accounts", description="The credential blocks of both accounts."
    )
    app: AppSpec = Field(title="SAE application", description="The app in account A.")
    image: ImageSpec = Field(title="Image", description="The private image in account B's ACR.")
    access: AccessSpec = Field(
        default_factory=AccessSpec,
        title="Pull access",
        description="How SAE is allowed to pull the image.",
    )
    network: NetworkSpec = Field(
        default_factory=NetworkSpec,
        title="Network",
        description="How SAE reaches the registry.",
    )
    rollout: RolloutSpec = Field(
        default_factory=RolloutSpec,
        title="Rollout",
        description="Change order timeout, rollback and batch release.",
    )

    @model_validator(mode="after")
    def _cross_fields(self) -> DeploySpec:
        ref = self.image.ref
        # An Enterprise -vpc domain is reachable from another region over CEN to a VPC linked
        # to the instance (ACR: access across regions, https://alibabacloud.com/help/en/acr/
        # use-cases/access-enterprise-edition-instances-across-regions-or-from-idc); the
        # whitelist step checks that path. A Personal one has no links to reach it through.
        if ref.over_vpc and ref.edition == "personal" and ref.region != self.app.region:
            raise ValueError(
                f"image.url: the VPC domain {ref.host} is reachable only from {ref.region}, "
                f"not from app.region {self.app.region}; use the public domain"
            )
        if self.rollout.batches is not None and self.rollout.batches > self.app.replicas:
            raise ValueError(
                f"rollout.batches: {self.rollout.batches} batches for {self.app.replicas} "
                "replica(s); at most one batch per replica"
            )
        if self.rollout.batches is not None and "UpdateStrategy" in self.app.advanced:
            raise ValueError(
                "app.advanced.UpdateStrategy: rollout.batches sets the update strategy; give one "
                "of the two"
            )
        return self

    @property
    def role_name(self) -> str:
        return self.access.role_name or f"sae-pull-{self.app.name}"[:64]

    @property
    def policy_name(self) -> str:
        return self.access.policy_name or f"sae-pull-{self.app.name}"[:128]


def with_image_tag(spec: DeploySpec, tag: str) -> DeploySpec:
    """The same spec deploying another tag of the same repository (validated)."""
    url = spec.image.ref.with_tag(tag).url
    try:
        parse_image(url)
    except ValueError as exc:
        raise SpecError(f"image tag {tag!r}", [f"image_tag: {exc}"]) from None
    data = spec.model_dump()
    data["image"]["url"] = url
    return parse_spec(data, f"image tag {tag!r}")


class SpecError(ValueError):
    """An invalid spec: one line per problem, each naming its field path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(
            f"{source} is not a valid deploy spec:\n" + "\n".join(f"  {p}" for p in problems)
        )


def validation_problems(error: ValidationError) -> list[str]:
    """Pydantic's errors as `field.path: message` lines (the fleet spec words its own alike)."""
    out = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(spec)"
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        if message.startswith(_ADVANCED_MARK):
            out += [f"{path}.{p}" for p in message.split(_ADVANCED_MARK)[1:]]
            continue
        if message.startswith(_FIELD_PREFIXES):
            field, _, message = message.partition(": ")
            path = field if "." in field else f"{path}.{field}"
        out.append(f"{path}: {message}")
    return out


def parse_spec(data: Any, source: str = "spec") -> DeploySpec:
    """Validate a spec given as data; SpecError lists every problem."""
    try:
        return DeploySpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(source, validation_problems(exc)) from None


def load_spec(path: Path) -> DeploySpec:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(str(path), [f"(file): cannot read: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise SpecError(str(path), [f"(file): not valid YAML: {exc}"]) from None
    return parse_spec(data, str(path))
