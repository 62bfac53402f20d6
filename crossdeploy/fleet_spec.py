"""The fleet spec: one image from account B rolled out to many SAE apps of account A.

```yaml
name: shop                      # the fleet: names the shared pull role/policy (sae-pull-fleet-shop)
accounts: {app: sandbox-app, registry: sandbox-registry}
image: {url: demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.1, instance_id: cri-demo}
access: {method: ram-role}      # shared by every app, as in a deploy spec
network: {whitelist: auto}
rollout: {timeout_seconds: 1200, rollback_on_failure: true}
defaults: {region: cn-hangzhou, cpu: 1000, memory: 2048}   # app fields every app starts from
apps:
  - {name: shop-web, namespace: cn-hangzhou:demo, replicas: 2}
  - {name: shop-api, region: cn-shanghai, namespace: cn-shanghai:web, envs: {MODE: api}}
```

Each app is `defaults` overlaid with its own fields (`envs` merged key by key) and must be a
valid deploy-spec `app`. Every problem is reported at once before any API call, each by its
path (`apps[3].name`, `defaults.memory`); two apps of the same name in one namespace are refused.
`deploy_specs` turns the fleet into one DeploySpec per app, all naming the fleet's shared role
and policy; `shared_spec(namespace)` is the spec the fleet's shared steps (role, policy,
whitelist, registry secret) are inspected, recorded and torn down with.

`fleet_from_files` accepts several deploy specs and/or fleet files: they must share accounts,
image, access, network and rollout, and become one fleet.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from crossdeploy.spec import (
    AccessSpec,
    Accounts,
    DeploySpec,
    ImageSpec,
    NetworkSpec,
    RolloutSpec,
    SpecError,
    lowercase_name,
    validation_problems,
)

SHARED = ("accounts", "image", "access", "network", "rollout")
"""Sections every app of a fleet shares."""


class FleetSpec(BaseModel):
    """Roll one image of account B out to several SAE apps of account A."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        title="Fleet name",
        description="Names the shared pull role and policy (sae-pull-fleet-<name>).",
    )
    accounts: Accounts = Field(title="Accounts", description="Both accounts' credential blocks.")
    image: ImageSpec = Field(title="Image", description="The private image in account B's ACR.")
    access: AccessSpec = Field(
        default_factory=AccessSpec,
        title="Pull access",
        description="How SAE pulls the image; one role/policy (or secret per namespace).",
    )
    network: NetworkSpec = Field(
        default_factory=NetworkSpec, title="Network", description="How SAE reaches the registry."
    )
    rollout: RolloutSpec = Field(
        default_factory=RolloutSpec,
        title="Rollout",
        description="Change order timeout and rollback, per app.",
    )
    defaults: dict[str, Any] = Field(
        default_factory=dict,
        title="App defaults",
        description="Deploy-spec app fields every app starts from (region, cpu, memory, ...).",
    )
    apps: list[dict[str, Any]] = Field(
        min_length=1,
        title="Apps",
        description="The SAE apps: deploy-spec app fields, over the defaults.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return lowercase_name(value, longest=30)

    def app_data(self, index: int) -> dict[str, Any]:
        """The app's fields over the defaults (envs merged key by key)."""
        app = self.apps[index]
        merged = {**copy.deepcopy(self.defaults), **copy.deepcopy(app)}
        if isinstance(self.defaults.get("envs"), dict) and isinstance(app.get("envs"), dict):
            merged["envs"] = {**self.defaults["envs"], **app["envs"]}
        return merged

    def _spec_data(self, app: dict[str, Any]) -> dict[str, Any]:
        data = self.model_dump(include=set(SHARED), exclude_none=True)
        data["app"] = app
        if data["access"].get("method", "ram-role") == "ram-role":
            data["access"].setdefault("role_name", self.role_name)
            data["access"].setdefault("policy_name", self.policy_name)
        return data

    @property
    def role_name(self) -> str:
        return self.access.role_name or f"sae-pull-fleet-{self.name}"

    @property
    def policy_name(self) -> str:
        return self.access.policy_name or f"sae-pull-fleet-{self.name}"

    def deploy_specs(self) -> list[DeploySpec]:
        """One deploy spec per app, in order; SpecError names every problem by its path."""
        specs: list[DeploySpec] = []
        problems: list[str] = []
        seen: dict[tuple[str, str], int] = {}
        for index in range(len(self.apps)):
            try:
                spec = DeploySpec.model_validate(self._spec_data(self.app_data(index)))
            except ValidationError as exc:
                problems += [self._where(index, p) for p in validation_problems(exc)]
                continue
            key = (spec.app.namespace_id, spec.app.name)
            if key in seen:
                problems.append(
                    f"apps[{index}].name: {spec.app.name!r} is already apps[{seen[key]}] in "
                    f"namespace {spec.app.namespace_id}; app names are unique per namespace"
                )
                continue
            seen[key] = index
            specs.append(spec)
        if problems:
            raise SpecError(f"fleet {self.name}", list(dict.fromkeys(problems)))
        return specs

    def _where(self, index: int, problem: str) -> str:
        """`app.cpu: ...` -> `apps[2].cpu: ...`, or `defaults.cpu: ...` when the value came
        from the defaults; shared sections keep their own paths."""
        path, _, message = problem.partition(": ")
        if path == "app":
            return f"apps[{index}]: {message}"
        if not path.startswith("app."):
            if path == "image.url" and "app.region" in message:
                return f"apps[{index}].region: {message}"
            return problem
        field = path.removeprefix("app.").split(".")[0]
        rest = path.removeprefix("app.")
        if field not in self.apps[index] and field in self.defaults:
            return f"defaults.{rest}: {message}"
        return f"apps[{index}].{rest}: {message}"

    def shared_spec(self, namespace_id: str, region: str) -> DeploySpec:
        """The deploy spec of the fleet's shared resources in one namespace: its app is named
        `fleet-<name>` (which names the whitelist comment, the secret and the ledger)."""
        app = {"name": f"fleet-{self.name}", "region": region, "namespace": namespace_id}
        return DeploySpec.model_validate(self._spec_data(app))


def parse_fleet(data: Any, source: str = "fleet") -> FleetSpec:
    """Validate a fleet given as data, shared sections and every app; SpecError lists every
    problem with its path."""
    try:
        fleet = FleetSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(source, [_bracketed(p) for p in validation_problems(exc)]) from None
    try:
        fleet.deploy_specs()
    except SpecError as exc:
        raise SpecError(source, exc.problems) from None
    return fleet


def _bracketed(problem: str) -> str:
    """`apps.3.name` -> `apps[3].name`."""
    return re.sub(r"\bapps\.(\d+)", r"apps[\1]", problem, count=1)


def fleet_of(specs: list[DeploySpec], name: str) -> FleetSpec:
    """Several deploy specs as one fleet; they must share accounts, image, access, network and
    rollout."""
    entries: list[_Entry] = [
        (f"specs[{i}]", _shared(spec), [_app(spec)], None) for i, spec in enumerate(specs)
    ]
    return _combine(entries, name, "specs")


def is_fleet_data(data: Any) -> bool:
    return isinstance(data, dict) and "apps" in data


def is_fleet_file(path: Path) -> bool:
    """Whether a YAML file holds a fleet (has `apps`); unreadable files are not."""
    try:
        return is_fleet_data(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError):
        return False


def default_fleet_name(app_name: str) -> str:
    """A fleet name from an app name (fleet names are at most 30 characters)."""
    return app_name[:30].rstrip("-")


def fleet_from_files(paths: list[Path], name: str | None = None) -> FleetSpec:
    """Deploy specs and/or fleet files as one fleet. `name` defaults to the (first) fleet file's
    name, else to the first app's name."""
    from crossdeploy.spec import load_spec

    problems: list[str] = []
    entries: list[_Entry] = []
    for path in paths:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            problems.append(f"{path}: (file): cannot read: {exc.strerror}")
            continue
        except yaml.YAMLError as exc:
            problems.append(f"{path}: (file): not valid YAML: {exc}")
            continue
        try:
            if is_fleet_data(data):
                fleet = parse_fleet(data, str(path))
                apps = [fleet.app_data(i) for i in range(len(fleet.apps))]
                entries.append((str(path), _shared(fleet), apps, fleet.name))
            else:
                spec = load_spec(path)
                entries.append((str(path), _shared(spec), [_app(spec)], None))
        except SpecError as exc:
            problems += [f"{path}: {p}" for p in exc.problems]
    source = " ".join(str(p) for p in paths)
    if problems:
        raise SpecError(source, problems)
    return _combine(entries, name, source)


_Entry = tuple[str, dict[str, Any], list[dict[str, Any]], str | None]
"""(where from, shared sections, apps, fleet name or None)."""


def _shared(spec: DeploySpec | FleetSpec) -> dict[str, Any]:
    return spec.model_dump(include=set(SHARED), exclude_none=True)


def _app(spec: DeploySpec) -> dict[str, Any]:
    return spec.app.model_dump(exclude_none=True)


def _combine(entries: list[_Entry], name: str | None, source: str) -> FleetSpec:
    first_source, shared, _, _ = entries[0]
    problems = [
        f"{where}: {section} differs from {first_source}'s; the apps of a fleet share it"
        for where, other, _, _ in entries[1:]
        for section in SHARED
        if other.get(section) != shared.get(section)
    ]
    if problems:
        raise SpecError(source, problems)
    names = [n for _, _, _, n in entries if n]
    apps = [app for _, _, entry_apps, _ in entries for app in entry_apps]
    chosen = name or (names[0] if names else default_fleet_name(str(apps[0].get("name", ""))))
    return parse_fleet({**shared, "name": chosen, "apps": apps}, source)
