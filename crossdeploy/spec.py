"""The deploy spec (contract: shared/contracts/interfaces.md section 2), also the flow's parameter.

Every problem is reported at once, each with its field path and what would be valid, before
any API call is made.
"""

from __future__ import annotations

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
from crossdeploy.sae_facts import CPU_FOR_MEMORY, MAX_REPLICAS, memory_choices_for

_REGION = re.compile(r"^[a-z]{2}-[a-z0-9]+(?:-[a-z0-9]+)*$")
_LOWER_APP_NAME = re.compile(r"^[a-z][a-z0-9-]{0,35}$")
_NAMESPACE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_RAM_NAME = re.compile(r"^[a-zA-Z0-9.-]{1,64}$")
_POLICY_NAME = re.compile(r"^[a-zA-Z0-9-]{1,128}$")
_INSTANCE_ID = re.compile(r"^cri-[a-z0-9]+$|^cri-[a-z0-9-]+$")
_BLOCK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


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

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _LOWER_APP_NAME.match(value) or value.endswith("-"):
            raise ValueError(
                f"{value!r} must be 1-36 lowercase letters, digits or hyphens, starting with a "
                "letter and not ending with a hyphen"
            )
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError(f"{value!r} is not a region id such as cn-hangzhou")
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

    @property
    def namespace_id(self) -> str:
        return self.namespace or self.region


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
        description="Change order timeout and rollback.",
    )

    @model_validator(mode="after")
    def _cross_fields(self) -> DeploySpec:
        ref = self.image.ref
        if ref.over_vpc and ref.region != self.app.region:
            raise ValueError(
                f"image.url: the VPC domain {ref.host} is reachable only from {ref.region}, "
                f"not from app.region {self.app.region}; use the public domain"
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


def _problems(error: ValidationError) -> list[str]:
    out = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(spec)"
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        if message.startswith(("instance_id: ", "registry_login: ", "image.url: ")):
            field, _, message = message.partition(": ")
            path = field if "." in field else f"{path}.{field}"
        out.append(f"{path}: {message}")
    return out


def parse_spec(data: Any, source: str = "spec") -> DeploySpec:
    """Validate a spec given as data; SpecError lists every problem."""
    try:
        return DeploySpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(source, _problems(exc)) from None


def load_spec(path: Path) -> DeploySpec:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(str(path), [f"(file): cannot read: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise SpecError(str(path), [f"(file): not valid YAML: {exc}"]) from None
    return parse_spec(data, str(path))
