"""The world file: the accounts and resources that exist before anything runs.

The schema is the contract in `shared/contracts/interfaces.md` section 3. Loading checks every
cross-reference, so a typo in a world file fails at start-up with the path of the bad field rather
than as a puzzling API answer later.
"""

from __future__ import annotations

import ipaddress
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sandbox.services.ram_system_policies import SYSTEM_POLICIES


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AccessKey(_Model):
    id: str = Field(min_length=1)
    secret: str = Field(min_length=1)


class Account(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    uid: str = Field(pattern=r"^\d{16}$")
    access_keys: list[AccessKey] = Field(min_length=1)


class Timing(_Model):
    change_order_seconds: float = Field(default=3.0, ge=0)
    endpoint_transition_seconds: float = Field(
        default=1.0,
        ge=0,
        description=(
            "Wall seconds an ACR internet endpoint spends CREATING (switched on) or DELETING "
            "(switched off) before it is RUNNING again, and a new VPC link spends CREATING."
        ),
    )
    minute_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Wall seconds per API minute (batch wait times), so tests can shorten them.",
    )


class Eip(_Model):
    id: str
    ip: str

    @field_validator("ip")
    @classmethod
    def _ipv4(cls, value: str) -> str:
        ipaddress.IPv4Address(value)
        return value


class SnatEntry(_Model):
    source_vswitch: str | None = None
    source_cidr: str | None = None
    ip: str = Field(
        description=(
            "The entry's EIP, or several comma-separated (an SNAT address pool), as VPC's SnatIp "
            "holds them (CreateSnatEntry: https://www.alibabacloud.com/help/doc-detail/120259.htm)."
        )
    )

    @field_validator("ip")
    @classmethod
    def _ipv4_list(cls, value: str) -> str:
        ips = [part.strip() for part in value.split(",")]
        for ip in ips:
            ipaddress.IPv4Address(ip)
        if len(set(ips)) != len(ips):
            raise ValueError(f"SNAT ip {value!r} names an EIP twice")
        return ",".join(ips)

    @property
    def ips(self) -> tuple[str, ...]:
        return tuple(self.ip.split(","))

    @model_validator(mode="after")
    def _one_source(self) -> SnatEntry:
        if (self.source_vswitch is None) == (self.source_cidr is None):
            raise ValueError("give exactly one of source_vswitch or source_cidr")
        if self.source_cidr is not None:
            ipaddress.IPv4Network(self.source_cidr)
        return self


class NatGateway(_Model):
    id: str
    name: str = ""
    eips: list[Eip] = Field(default_factory=list)
    snat: list[SnatEntry] = Field(default_factory=list)


class VSwitch(_Model):
    id: str
    cidr: str
    zone: str
    name: str = ""
    shared_with: list[str] = Field(
        default_factory=list,
        description=(
            "Accounts (by name) this vSwitch is shared with (VPC sharing, a resource share of "
            "vSwitches): they see it, and an ACR instance of theirs may be linked to its VPC."
        ),
    )


class Vpc(_Model):
    id: str
    account: str
    cidr: str
    name: str = ""
    vswitches: list[VSwitch] = Field(default_factory=list)
    security_groups: list[str] = Field(default_factory=list)
    nat_gateways: list[NatGateway] = Field(default_factory=list)
    private_zones: list[str] = Field(
        default_factory=list,
        description=(
            "PrivateZone zones associated with this VPC that resolve an ACR instance's -vpc "
            "domain to its VPC endpoint (the DNS step of a VPC that reaches the endpoint over CEN; "
            "linked VPCs get theirs from ACR). A zone resolves its own name and the names below it."
        ),
    )

    @model_validator(mode="after")
    def _addresses(self) -> Vpc:
        network = ipaddress.IPv4Network(self.cidr)
        vswitch_ids = {v.id for v in self.vswitches}
        for vsw in self.vswitches:
            if not ipaddress.IPv4Network(vsw.cidr).subnet_of(network):
                raise ValueError(f"vswitch {vsw.id} {vsw.cidr} is outside the VPC CIDR {self.cidr}")
        for nat in self.nat_gateways:
            ips = {e.ip for e in nat.eips}
            for entry in nat.snat:
                for ip in entry.ips:
                    if ip not in ips:
                        raise ValueError(f"SNAT ip {ip} is not an EIP of {nat.id}")
                if entry.source_vswitch is not None and entry.source_vswitch not in vswitch_ids:
                    raise ValueError(
                        f"SNAT source_vswitch {entry.source_vswitch} is not in {self.id}"
                    )
        return self


class SaeNamespace(_Model):
    id: str
    name: str
    account: str
    vpc: str
    vswitch: str
    security_group: str

    @field_validator("id")
    @classmethod
    def _region_prefixed(cls, value: str) -> str:
        if not value or value.count(":") > 1:
            raise ValueError("namespace id is <region> or <region>:<name>")
        return value


class AclEntry(_Model):
    entry: str
    comment: str = ""

    @field_validator("entry")
    @classmethod
    def _cidr(cls, value: str) -> str:
        ipaddress.IPv4Network(value)
        return value


class InternetEndpoint(_Model):
    enabled: bool = True
    acl: list[AclEntry] = Field(default_factory=list)


class LinkedVpc(_Model):
    vpc: str
    vswitch: str = ""


class VpcEndpoint(_Model):
    linked_vpcs: list[LinkedVpc] = Field(default_factory=list)
    acl: list[AclEntry] = Field(
        default_factory=list,
        description=(
            "Must stay empty: ACR's VPC access is the list of linked VPCs, and no API keeps a CIDR "
            "list on the VPC endpoint (the ACL calls take only the internet endpoint)."
        ),
    )

    @field_validator("acl")
    @classmethod
    def _no_cidr_list(cls, value: list[AclEntry]) -> list[AclEntry]:
        if value:
            raise ValueError(
                "the VPC endpoint has no CIDR list in ACR (access over VPC is the list of linked "
                "VPCs, plus CEN to a linked VPC); remove vpc_endpoint.acl"
            )
        return value

    @field_validator("linked_vpcs", mode="before")
    @classmethod
    def _ids_or_objects(cls, value: object) -> object:
        if isinstance(value, list):
            return [{"vpc": v} if isinstance(v, str) else v for v in value]
        return value


class RegistryLogin(_Model):
    username: str
    password: str


class Repo(_Model):
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_names_are_text(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value


class AcrInstance(_Model):
    id: str
    name: str
    account: str
    edition: Literal["enterprise", "personal"] = "enterprise"
    internet_endpoint: InternetEndpoint = Field(default_factory=InternetEndpoint)
    vpc_endpoint: VpcEndpoint = Field(default_factory=VpcEndpoint)
    login: RegistryLogin
    repos: dict[str, Repo] = Field(default_factory=dict)

    @field_validator("repos")
    @classmethod
    def _namespaced(cls, value: dict[str, Repo]) -> dict[str, Repo]:
        for name in value:
            if name.count("/") != 1:
                raise ValueError(f"repo {name!r} must be <namespace>/<name>")
        return value


class Region(_Model):
    vpcs: list[Vpc] = Field(default_factory=list)
    cen: list[list[str]] = Field(default_factory=list)
    sae_namespaces: list[SaeNamespace] = Field(default_factory=list)
    acr_instances: list[AcrInstance] = Field(default_factory=list)

    @field_validator("cen")
    @classmethod
    def _pairs(cls, value: list[list[str]]) -> list[list[str]]:
        for pair in value:
            if len(pair) != 2:
                raise ValueError("each cen entry is a pair of VPC ids")
        return value


class RamRole(_Model):
    name: str
    trust_policy: str
    description: str = ""
    max_session_duration: int = Field(
        default=3600,
        ge=3600,
        le=43200,
        description="Seconds, as CreateRole's MaxSessionDuration: 3600 to 43200.",
    )
    attached: list[str] = Field(default_factory=list)


class RamPolicy(_Model):
    name: str
    document: str
    description: str = ""
    versions: list[str] = Field(
        default_factory=list,
        description="Older non-default versions, oldest first; `document` is the default.",
    )


class RamUser(_Model):
    """A RAM user (`shared/contracts/interfaces.md` section 6): requests signed with one of its
    keys act as the user and are judged by its attached policies (`sandbox/permission_gate.py`)."""

    name: str = Field(pattern=r"^[a-zA-Z0-9.@\-_]{1,64}$")
    access_keys: list[AccessKey] = Field(default_factory=list)
    policies: list[str] = Field(
        default_factory=list,
        description="Attached policies by name: the account's custom ones or system policies.",
    )
    groups: list[str] = Field(
        default_factory=list,
        description="The user groups (of ram.<account>.groups, by name) the user is a member of.",
    )


class RamGroup(_Model):
    """A RAM user group: its policies count for every member, as on RAM.

    The name follows RAM's GroupName format, letters, digits and hyphens, 1 to 64 characters
    (DeleteGroup's `^[a-zA-Z0-9\\-]+$`, AlibabaCloudDocs/ram `DeleteGroup.md`, reference S12; the
    length and the 128-character Comments from ALIYUN::RAM::Group,
    https://www.alibabacloud.com/help/doc-detail/48361.html)."""

    name: str = Field(pattern=r"^[a-zA-Z0-9\-]{1,64}$")
    comments: str = Field(default="", max_length=128)
    policies: list[str] = Field(
        default_factory=list,
        description="Attached policies by name: the account's custom ones or system policies.",
    )


class OidcProvider(_Model):
    """An OIDC identity provider registered in RAM (CreateOIDCProvider: name, issuer URL, client
    ids), which `AssumeRoleWithOIDC` trusts by its ARN `acs:ram::<uid>:oidc-provider/<name>`.

    The real STS fetches the issuer's signing keys from the issuer URL; the sandbox never leaves
    the machine, so the world file declares them (`jwks`, the issuer's public JSON Web Key Set)."""

    name: str = Field(pattern=r"^[a-zA-Z0-9.\-]{1,128}$")
    issuer_url: str = Field(pattern=r"^https://[^\s]{1,500}$")
    client_ids: list[str] = Field(min_length=1, max_length=50)
    jwks: dict[str, list[dict[str, Any]]] = Field(
        description='The issuer\'s public keys as a JWK Set: {"keys": [{"kty": "RSA", ...}]}.'
    )

    @field_validator("jwks")
    @classmethod
    def _key_set(cls, value: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        if set(value) != {"keys"} or not value["keys"]:
            raise ValueError('jwks is a JWK Set: {"keys": [<at least one public key>]}')
        if any("d" in key for key in value["keys"]):
            raise ValueError("jwks holds public keys only (a key has the private member 'd')")
        return value


class RamAccount(_Model):
    roles: list[RamRole] = Field(default_factory=list)
    policies: list[RamPolicy] = Field(default_factory=list)
    oidc_providers: list[OidcProvider] = Field(default_factory=list)
    users: list[RamUser] = Field(default_factory=list)
    groups: list[RamGroup] = Field(default_factory=list)

    def check_users(self, account: str) -> None:
        """User and group names unique (RAM compares them case-insensitively), every attached
        policy known (one of this account's custom policies or a system policy), and every
        group a user names one of this account's."""
        for what, names in (
            ("user", [u.name.lower() for u in self.users]),
            ("group", [g.name.lower() for g in self.groups]),
        ):
            if len(set(names)) != len(names):
                raise ValueError(f"ram.{account}: duplicate {what} name")
        custom = {p.name.lower() for p in self.policies}
        holders = [("user", u.name, u.policies) for u in self.users]
        holders += [("group", g.name, g.policies) for g in self.groups]
        for kind, name, policies in holders:
            for policy in policies:
                if policy.lower() not in custom and policy not in SYSTEM_POLICIES:
                    raise ValueError(
                        f"ram.{account}: {kind} {name} attaches unknown policy {policy!r} "
                        f"(neither a policy of ram.{account}.policies nor a system policy)"
                    )
        groups = {g.name.lower() for g in self.groups}
        for user in self.users:
            if len({g.lower() for g in user.groups}) != len(user.groups):
                raise ValueError(f"ram.{account}: user {user.name} names a group twice")
            for group in user.groups:
                if group.lower() not in groups:
                    raise ValueError(
                        f"ram.{account}: user {user.name} is in unknown group {group!r} "
                        f"(not a group of ram.{account}.groups)"
                    )


class World(_Model):
    timing: Timing = Field(default_factory=Timing)
    accounts: list[Account] = Field(min_length=1)
    regions: dict[str, Region] = Field(default_factory=dict)
    ram: dict[str, RamAccount] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references(self) -> World:
        names = [a.name for a in self.accounts]
        uids = [a.uid for a in self.accounts]
        keys = [k.id for a in self.accounts for k in a.access_keys]
        keys += [k.id for ram in self.ram.values() for u in ram.users for k in u.access_keys]
        for what, values in (
            ("account name", names),
            ("account uid", uids),
            ("key id (unique across accounts and RAM users)", keys),
        ):
            if len(set(values)) != len(values):
                raise ValueError(f"duplicate {what}")
        known = set(names)
        for account, ram in self.ram.items():
            if account not in known:
                raise ValueError(f"ram: unknown account {account!r}")
            ram.check_users(account)
        everywhere = [v.id for region in self.regions.values() for v in region.vpcs]
        if len(set(everywhere)) != len(everywhere):
            raise ValueError("duplicate vpc id (VPC ids are unique across regions)")
        for region_id, region in self.regions.items():
            self._check_region(region_id, region, known, set(everywhere))
        return self

    @staticmethod
    def _check_region(
        region_id: str, region: Region, accounts: set[str], everywhere: set[str]
    ) -> None:
        vpcs = {v.id: v for v in region.vpcs}
        for each in region.vpcs:
            if each.account not in accounts:
                raise ValueError(f"{region_id}: vpc {each.id} has unknown account {each.account}")
            for vsw in each.vswitches:
                for name in vsw.shared_with:
                    if name not in accounts or name == each.account:
                        raise ValueError(
                            f"{region_id}: vswitch {vsw.id} is shared with {name!r}, not another "
                            "account of the world"
                        )
        # CEN connects VPCs of any region (cross-region connections need a bandwidth plan).
        for pair in region.cen:
            for vpc_id in pair:
                if vpc_id not in everywhere:
                    raise ValueError(f"{region_id}: cen names unknown vpc {vpc_id}")
        for ns in region.sae_namespaces:
            vpc = vpcs.get(ns.vpc)
            if vpc is None or vpc.account != ns.account:
                raise ValueError(
                    f"{region_id}: namespace {ns.id} names vpc {ns.vpc} not of its account"
                )
            if ns.vswitch not in {v.id for v in vpc.vswitches}:
                raise ValueError(
                    f"{region_id}: namespace {ns.id} names vswitch {ns.vswitch} not in {vpc.id}"
                )
            if ns.security_group not in vpc.security_groups:
                raise ValueError(f"{region_id}: namespace {ns.id} names unknown security group")
            if not (ns.id == region_id or ns.id.startswith(f"{region_id}:")):
                raise ValueError(f"{region_id}: namespace id {ns.id} is not of this region")
        for inst in region.acr_instances:
            if inst.account not in accounts:
                raise ValueError(f"{region_id}: acr instance {inst.id} has unknown account")
            for link in inst.vpc_endpoint.linked_vpcs:
                vpc = vpcs.get(link.vpc)
                if vpc is None:
                    raise ValueError(f"{region_id}: {inst.id} links unknown vpc {link.vpc}")
                if vpc.account != inst.account and not linkable_vswitches(vpc, inst.account):
                    raise ValueError(
                        f"{region_id}: {inst.id} links {link.vpc} of account {vpc.account}, "
                        f"which shares no vSwitch with {inst.account}"
                    )
                if link.vswitch and link.vswitch not in {
                    v.id for v in linkable_vswitches(vpc, inst.account)
                }:
                    raise ValueError(
                        f"{region_id}: {inst.id} links {link.vpc} through {link.vswitch}, not a "
                        f"vSwitch of it that {inst.account} can use"
                    )

    def account(self, name: str) -> Account:
        return next(a for a in self.accounts if a.name == name)

    def cen_pairs(self) -> list[tuple[str, str]]:
        """Every CEN connection of the world, whichever region lists it."""
        return [(a, b) for region in self.regions.values() for a, b in region.cen]

    def vpc(self, vpc_id: str) -> tuple[str, Vpc] | None:
        """A VPC by id, with its region."""
        for region_id, region in self.regions.items():
            for vpc in region.vpcs:
                if vpc.id == vpc_id:
                    return region_id, vpc
        return None


def linkable_vswitches(vpc: Vpc, account: str) -> list[VSwitch]:
    """The vSwitches of `vpc` an ACR instance of `account` (a name) may be linked through: any of
    its own VPC, or those shared with it (ACR, cross-account access by VPC sharing:
    https://www.alibabacloud.com/help/en/acr/user-guide/cross-account-access-to-container-registry-service-enterprise-edition-instances-by-using-vpc-sharing-service)."""
    if vpc.account == account:
        return list(vpc.vswitches)
    return [v for v in vpc.vswitches if account in v.shared_with]


def bundled_world_path(name: str = "demo") -> Path:
    """Path of a world file shipped with the package (`sandbox/worlds/<name>.yaml`)."""
    return Path(str(resources.files("sandbox") / "worlds" / f"{name}.yaml"))


def load_world(path: Path | str | None = None) -> World:
    """Read and validate a world file; the bundled demo world when no path is given."""
    source = Path(path) if path is not None else bundled_world_path()
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    return World.model_validate(data)
