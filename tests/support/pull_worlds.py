"""World variants for cross-account image pulls: the demo world set up to pass, or to fail one way.

A `PullCase` is a world file's contents, the app's deploy parameters and, when the app pulls
with a secret, the secret account `app` must hold. The judgment tests seed a store from a case
directly (`seeded_store`); end-to-end tests can write the world for a sandbox process
(`PullCase.write_world`), create the secret through the SDK (`SecretSpec.secret_data`) and deploy
with `PullCase.config(secret_id)`. Variants are built by editing a deep copy of the demo world
with the small `(data) -> None` edits below, so a failing case differs from a passing one in
exactly the edit under test.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from sandbox.seed import seed_world
from sandbox.services import cr, ram
from sandbox.services.sae import secrets
from sandbox.store import Scope, Store, Tx
from sandbox.world import World
from tests.support.policies import document, permission, statement, trust
from tests.support.worlds import demo_world_data

Data = dict[str, Any]
Edit = Callable[[Data], None]

APP_UID = "1111111111111111"
REGISTRY_UID = "2222222222222222"
OTHER_UID = "3333333333333333"
REGION = "cn-hangzhou"
NAMESPACE_ID = "cn-hangzhou:demo"
ISOLATED_NAMESPACE_ID = "cn-hangzhou:isolated"
APP_VPC_CIDR = "172.16.0.0/12"
APP_VSWITCH_CIDR = "172.16.1.0/24"
EGRESS_IP = "47.96.10.20"

INSTANCE_ID = "cri-demo"
EE_HOST = "demo-registry.cn-hangzhou.cr.aliyuncs.com"
EE_VPC_HOST = "demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com"
PERSONAL_HOST = "registry.cn-hangzhou.aliyuncs.com"
PERSONAL_VPC_HOST = "registry-vpc.cn-hangzhou.aliyuncs.com"
APP_REGISTRY_HOST = "app-registry.cn-hangzhou.cr.aliyuncs.com"
SHANGHAI_INSTANCE_ID = "cri-shanghai"
SHANGHAI_HOST = "sh-registry.cn-shanghai.cr.aliyuncs.com"
SHANGHAI_VPC_HOST = "sh-registry-vpc.cn-shanghai.cr.aliyuncs.com"

EE_IMAGE = f"{EE_HOST}/shop/web:1.1"
EE_VPC_IMAGE = f"{EE_VPC_HOST}/shop/web:1.1"
PERSONAL_IMAGE = f"{PERSONAL_HOST}/shop-personal/web:1.0"
PERSONAL_VPC_IMAGE = f"{PERSONAL_VPC_HOST}/shop-personal/web:1.0"
APP_IMAGE = f"{APP_REGISTRY_HOST}/team/api:1.0"
DIGESTS = {
    EE_IMAGE: "sha256:bbbb",
    EE_VPC_IMAGE: "sha256:bbbb",
    PERSONAL_IMAGE: "sha256:dddd",
    PERSONAL_VPC_IMAGE: "sha256:dddd",
    APP_IMAGE: "sha256:eeee",
}
"""The digest each good case's image resolves to."""

EE_LOGIN = ("registry@2222222222222222", "sandbox-registry-login")
PERSONAL_LOGIN = ("registry-personal@2222222222222222", "sandbox-personal-login")
APP_LOGIN = ("app@1111111111111111", "sandbox-app-login")
PASSWORDS = (EE_LOGIN[1], PERSONAL_LOGIN[1], APP_LOGIN[1])
"""Every registry password of these worlds: no verdict message may contain one."""

ROLE_NAME = "sae-pull"
ROLE_ARN = f"acs:ram::{REGISTRY_UID}:role/{ROLE_NAME}"
PULL_ACTIONS = (
    "cr:GetAuthorizationToken",
    "cr:ListInstanceEndpoint",
    "cr:PullRepository",
    "cr:GetRepository",
    "cr:ListRepositoryTag",
)
"""The pull policy SAE's cross-account recipe documents."""


def sae_trust(app_uid: str = APP_UID, effect: str = "Allow") -> str:
    """A trust policy naming the SAE service of account `app_uid`."""
    return trust(service=[f"{app_uid}@sae.aliyuncs.com"], effect=effect)


def pull_policy(*actions: str, resource: str = "*", effect: str = "Allow") -> str:
    """The documented pull policy, or one with only `actions` (or denying them)."""
    return permission(*(actions or PULL_ACTIONS), resource=resource, effect=effect)


def pull_policy_without(*missing: str) -> str:
    """The documented pull policy lacking some actions."""
    return pull_policy(*(a for a in PULL_ACTIONS if a not in missing))


def instance_scoped_pull_policy(namespace: str = "shop", repo: str = "web") -> str:
    """The pull policy sae-crossdeploy wrote before issue 13: the five actions on cri-demo and the
    repository in one statement, so `cr:GetAuthorizationToken` is scoped to the instance (ACR
    checks it on `*` only)."""
    base = f"acs:cr:*:{REGISTRY_UID}"
    resources = [
        f"{base}:instance/{INSTANCE_ID}",
        f"{base}:repository/{INSTANCE_ID}/{namespace}/{repo}",
    ]
    return document(statement(list(PULL_ACTIONS), resources))


# -- where things are in a world's data ------------------------------------------------------------


def region_of(data: Data, region: str = REGION) -> Data:
    found: Data = data["regions"][region]
    return found


def instance_of(data: Data, instance_id: str = INSTANCE_ID) -> Data:
    return next(
        inst
        for region in data["regions"].values()
        for inst in region.get("acr_instances", [])
        if inst["id"] == instance_id
    )


def vpc_of(data: Data, vpc_id: str = "vpc-app") -> Data:
    """A VPC by id, in whichever region (VPC ids are unique across regions)."""
    return next(
        v
        for region in data["regions"].values()
        for v in region.get("vpcs", [])
        if v["id"] == vpc_id
    )


def ram_of(data: Data, account: str = "registry") -> Data:
    """The account's `ram:` section, created empty when missing."""
    section: Data = data.setdefault("ram", {}).setdefault(account, {})
    section.setdefault("roles", [])
    section.setdefault("policies", [])
    return section


def role_of(data: Data, name: str = ROLE_NAME, account: str = "registry") -> Data:
    return next(r for r in ram_of(data, account)["roles"] if r["name"] == name)


def policy_of(data: Data, name: str = ROLE_NAME, account: str = "registry") -> Data:
    return next(p for p in ram_of(data, account)["policies"] if p["name"] == name)


# -- edits -----------------------------------------------------------------------------------------


def add_pull_role(
    data: Data,
    *,
    account: str = "registry",
    name: str = ROLE_NAME,
    trust_policy: str | None = None,
    policy: str | None = None,
) -> None:
    """A role trusted by the app's SAE with the pull policy (same name) attached."""
    section = ram_of(data, account)
    section["policies"].append({"name": name, "document": policy or pull_policy()})
    section["roles"].append(
        {"name": name, "trust_policy": trust_policy or sae_trust(), "attached": [name]}
    )


def whitelist(data: Data, entry: str = f"{EGRESS_IP}/32", instance_id: str = INSTANCE_ID) -> None:
    """Add an entry to the instance's internet ACL."""
    endpoint = instance_of(data, instance_id).setdefault("internet_endpoint", {})
    endpoint.setdefault("acl", []).append({"entry": entry, "comment": "sae egress"})


def share_vswitch(
    data: Data, vswitch_id: str = "vsw-app-h", vpc_id: str = "vpc-app", account: str = "registry"
) -> None:
    """VPC sharing: a vSwitch of the VPC is shared with another account."""
    vswitch = next(v for v in vpc_of(data, vpc_id)["vswitches"] if v["id"] == vswitch_id)
    vswitch.setdefault("shared_with", []).append(account)


def link_vpc(data: Data, vpc_id: str = "vpc-app", instance_id: str = INSTANCE_ID) -> None:
    """Link a VPC to the instance's VPC endpoint (through its first vSwitch); a VPC of another
    account than the instance's is shared with that account first (that vSwitch)."""
    instance = instance_of(data, instance_id)
    vpc = vpc_of(data, vpc_id)
    if vpc["account"] != instance["account"]:
        share_vswitch(data, vpc["vswitches"][0]["id"], vpc_id, instance["account"])
    endpoint = instance.setdefault("vpc_endpoint", {})
    endpoint.setdefault("linked_vpcs", []).append({"vpc": vpc_id})


def resolve_in(data: Data, vpc_id: str = "vpc-app", domain: str = EE_VPC_HOST) -> None:
    """The DNS step of a VPC reaching the endpoint over CEN: a PrivateZone zone for the domain."""
    vpc_of(data, vpc_id).setdefault("private_zones", []).append(domain)


def connect_cen(
    data: Data, *, dns: bool = True, pair: tuple[str, str] = ("vpc-app", "vpc-reg")
) -> None:
    """Connect the app's VPC by CEN to the registry's linked VPC, with the DNS step (`dns`)."""
    region_of(data).setdefault("cen", []).append(list(pair))
    if dns:
        resolve_in(data, pair[0])


def add_app_registry(data: Data) -> None:
    """An Enterprise instance of the app's own account, whose ACL admits 47.96.0.0/16."""
    region_of(data)["acr_instances"].append(
        {
            "id": "cri-app",
            "name": "app",
            "account": "app",
            "internet_endpoint": {"enabled": True, "acl": [{"entry": "47.96.0.0/16"}]},
            "login": {"username": APP_LOGIN[0], "password": APP_LOGIN[1]},
            "repos": {"team/api": {"tags": {"1.0": "sha256:eeee"}}},
        }
    )


def add_shanghai_registry(data: Data) -> None:
    """A second Enterprise instance of the registry account, in another region (cn-shanghai)."""
    data["regions"]["cn-shanghai"] = {
        "acr_instances": [
            {
                "id": SHANGHAI_INSTANCE_ID,
                "name": "sh",
                "account": "registry",
                "login": {"username": EE_LOGIN[0], "password": EE_LOGIN[1]},
                "repos": {"shop/web": {"tags": {"1.1": "sha256:bbbb"}}},
            }
        ]
    }


def snat(data: Data, *entries: Data) -> None:
    """Replace the app NAT gateway's SNAT entries (`{source_vswitch|source_cidr, ip}`)."""
    vpc_of(data)["nat_gateways"][0]["snat"] = list(entries)


def variant(*edits: Edit) -> Data:
    """A fresh copy of the demo world with the edits applied in order."""
    data = demo_world_data()
    for edit in edits:
        edit(data)
    return data


# -- cases -----------------------------------------------------------------------------------------


def docker_config(
    logins: Mapping[str, tuple[str, str]], *, plain: bool = True, auth: bool = True
) -> str:
    """base64 of a docker config.json with one `auths` entry per registry host, holding the login
    as `username` + `password` (`plain`) and/or as `auth` (base64 of `user:password`)."""
    auths: dict[str, dict[str, str]] = {}
    for host, (username, password) in logins.items():
        entry = auths.setdefault(host, {})
        if plain:
            entry.update(username=username, password=password)
        if auth:
            entry["auth"] = base64.b64encode(f"{username}:{password}".encode()).decode()
    return base64.b64encode(json.dumps({"auths": auths}).encode()).decode()


@dataclass(frozen=True)
class SecretSpec:
    """A `kubernetes.io/dockerconfigjson` SAE secret holding one registry login."""

    host: str
    username: str
    password: str
    namespace_id: str = NAMESPACE_ID
    secret_type: str = secrets.DOCKER_CONFIG_JSON
    secret_id: int = 1
    as_auth: bool = False
    """Write the login as `auth` (base64 `user:pass`) instead of username and password."""

    def dockerconfigjson(self) -> str:
        login = {self.host: (self.username, self.password)}
        return docker_config(login, plain=not self.as_auth, auth=self.as_auth)

    def secret_data(self) -> dict[str, str]:
        """The key -> value map (CreateSecret's inner `SecretData`)."""
        return {secrets.DOCKER_CONFIG_KEY: self.dockerconfigjson()}


@dataclass(frozen=True)
class PullCase:
    """A world, an image and the credentials an app in `cn-hangzhou:demo` pulls it with."""

    name: str
    data: Data = field(repr=False)
    image: str
    role: bool = False
    """Pull with `AcrAssumeRoleArn` = ROLE_ARN."""
    instance_id: str | None = None
    """`AcrInstanceId` (Enterprise images pulled with the role)."""
    secret: SecretSpec | None = None
    overrides: Mapping[str, str | None] = field(default_factory=dict)
    """Deploy parameters to set (a string) or leave out (None) after the defaults."""

    def world(self) -> World:
        return World.model_validate(self.data)

    def config(self, secret_id: int | None = None) -> dict[str, str]:
        """Deploy parameters by wire name; `secret_id` overrides the secret's (SDK-created)."""
        config = {"ImageUrl": self.image}
        if self.role:
            config["AcrAssumeRoleArn"] = ROLE_ARN
        if self.instance_id:
            config["AcrInstanceId"] = self.instance_id
        if self.secret is not None:
            config["ImagePullSecrets"] = str(secret_id or self.secret.secret_id)
        for key, value in self.overrides.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        return config

    def edited(self, *edits: Edit) -> PullCase:
        """The same case in a world changed by `edits` (applied to a copy)."""
        data = copy.deepcopy(self.data)
        for edit in edits:
            edit(data)
        return replace(self, data=data)

    def with_config(self, **overrides: str | None) -> PullCase:
        return replace(self, overrides={**self.overrides, **overrides})

    def with_secret(self, **changes: Any) -> PullCase:
        assert self.secret is not None
        return replace(self, secret=replace(self.secret, **changes))

    def write_world(self, path: Path) -> Path:
        """The world as a YAML file (e.g. for `SandboxProcess(world=...)`)."""
        self.world()
        path.write_text(yaml.safe_dump(self.data, sort_keys=False), encoding="utf-8")
        return path


GOOD_CASES = (
    PullCase(
        "ee-public-role",
        variant(add_pull_role, whitelist),
        EE_IMAGE,
        role=True,
        instance_id=INSTANCE_ID,
    ),
    PullCase(
        "ee-public-secret", variant(whitelist), EE_IMAGE, secret=SecretSpec(EE_HOST, *EE_LOGIN)
    ),
    PullCase(
        "ee-vpc-linked-role",
        variant(add_pull_role, link_vpc),
        EE_VPC_IMAGE,
        role=True,
        instance_id=INSTANCE_ID,
    ),
    PullCase(
        "ee-vpc-cen-role",
        variant(add_pull_role, connect_cen),
        EE_VPC_IMAGE,
        role=True,
        instance_id=INSTANCE_ID,
    ),
    PullCase("personal-public-role", variant(add_pull_role), PERSONAL_IMAGE, role=True),
    PullCase(
        "personal-public-secret",
        variant(),
        PERSONAL_IMAGE,
        secret=SecretSpec(PERSONAL_HOST, *PERSONAL_LOGIN, as_auth=True),
    ),
    PullCase("personal-vpc-role", variant(add_pull_role), PERSONAL_VPC_IMAGE, role=True),
    PullCase("same-account", variant(add_app_registry), APP_IMAGE),
)
"""Cross-account pulls that succeed, one per route and credential kind (plus same-account)."""

CASES = {case.name: case for case in GOOD_CASES}


# -- store state -----------------------------------------------------------------------------------


def put_secret(tx: Tx, spec: SecretSpec, account: str = APP_UID) -> None:
    """Store a secret as `sae.secrets` does (kind, scope and the `find_secret` shape)."""
    stamp = int(time.time() * 1000)
    tx.put(
        Scope(account, spec.namespace_id.partition(":")[0]),
        secrets.SECRET,
        str(spec.secret_id),
        {
            "SecretId": spec.secret_id,
            "SecretName": f"pull-{spec.secret_id}",
            "SecretType": spec.secret_type,
            "NamespaceId": spec.namespace_id,
            "SecretData": spec.secret_data(),
            "CreateTime": stamp,
            "UpdateTime": stamp,
        },
    )


def put_pull_role(
    tx: Tx,
    *,
    account: str = REGISTRY_UID,
    name: str = ROLE_NAME,
    trust_policy: str | None = None,
    policy: str | None = None,
) -> None:
    """Create a role, a custom policy and their attachment with the documents RAM writes."""
    now = time.time()
    scope = Scope(account)
    tx.put(
        scope, ram.POLICY, name.lower(), ram.new_policy(name, "", [policy or pull_policy()], now)
    )
    role = ram.new_role(account, name, trust_policy or sae_trust(), "", 3600, now)
    tx.put(scope, ram.ROLE, name.lower(), role)
    attachment = {"RoleName": name, "PolicyName": name, "PolicyType": "Custom", "AttachDate": ""}
    tx.put(scope, ram.ATTACHMENT, ram.attachment_id(name, "Custom", name), attachment)


def edit_instance(
    tx: Tx,
    change: Callable[[Data], None],
    instance_id: str = INSTANCE_ID,
    owner: str = REGISTRY_UID,
) -> None:
    """Change an Enterprise instance document in place (e.g. its endpoints' ACLs)."""
    found = cr.find_instance(tx, owner, instance_id)
    assert found is not None
    scope, doc = found
    change(doc)
    tx.put(scope, cr.INSTANCE, instance_id, doc)


def seeded_store(path: Path, case: PullCase) -> Store:
    """A store holding the case's world and, if it pulls with one, its secret."""
    store = Store(path)
    with store.transaction() as tx:
        seed_world(tx, case.world())
        if case.secret is not None:
            put_secret(tx, case.secret)
    return store


# -- breaks: a case changed one way, and the real pull's words for each failure -------------------

Break = Callable[[PullCase], PullCase]

TIMEOUT = ":443: i/o timeout"
NO_HOST = "no such host"
UNAUTHORIZED = "]: 401 Unauthorized"
FORBIDDEN = "]: 403 Forbidden"
NOT_FOUND = ": not found"
NO_ROLE = "assume role failed: EntityNotExist.Role"
NOT_TRUSTED = "assume role failed: NoPermission"
NO_TOKEN = "get authorization token failed: NoPrivilege"
NO_INSTANCE = "get authorization token failed: INSTANCE_NOT_EXIST"

SAE_DENY = trust(service=[f"{APP_UID}@sae.aliyuncs.com"], effect="Deny")
"""A trust statement denying account A's SAE, to merge into a trust that allows it."""


def image(url: str) -> Break:
    return lambda case: replace(case, image=url)


def config(**overrides: str | None) -> Break:
    return lambda case: case.with_config(**overrides)


def secret(**changes: object) -> Break:
    return lambda case: case.with_secret(**changes)


def no_credentials(case: PullCase) -> PullCase:
    return replace(case, role=False, secret=None, overrides={})
