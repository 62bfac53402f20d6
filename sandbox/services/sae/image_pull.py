"""Would SAE's image pull succeed right now? Judged from both accounts' state at pull time.

The checks run in the order a real pull meets them, and the first failure is the verdict:

1. reference: `image-reference-invalid` (kubelet cannot parse `ImageUrl`).
2. resolve (`no such host`): `registry-unknown` (the host is no registry of the world),
   `vpc-domain-unresolved` (an Enterprise `-vpc` domain resolves only in VPCs with a RUNNING link
   to the instance, whose PrivateZone records ACR writes, or in a VPC the world gives a
   `private_zones` entry for it: the DNS step of a VPC that reaches the endpoint over CEN).
3. network (every failure is a dial `i/o timeout`):
   - over a VPC domain: `vpc-domain-other-region` (Personal: VPC domains work only in their own
     region; Enterprise: the app is in another region and its VPC has no CEN connection to a
     VPC with a RUNNING link), `vpc-not-connected` (Enterprise, same region: the app's VPC has
     no RUNNING link to the instance's VPC endpoint and no CEN connection to a VPC that has one);
   - over a public domain: `no-nat-gateway` (no internet NAT gateway in the app's VPC),
     `no-snat-entry` (no SNAT entry with an EIP covers the app's vSwitch, by id or CIDR),
     `internet-endpoint-disabled` (off, or switched on but not RUNNING yet),
     `eip-not-whitelisted` (Enterprise only: some EIP of the SNAT entry is not admitted; an
     empty ACL is open, as `cr` models it).
4. authorization, skipped when the registry belongs to the app's own account:
   `no-credentials` (neither `AcrAssumeRoleArn` nor `ImagePullSecrets`: 401);
   with a role (SAE-side credential errors unless noted): `role-arn-invalid`,
   `role-wrong-account` (the ARN is not of the registry's account), `role-missing`,
   `trust-denied` (a Deny matches `<app uid>@sae.aliyuncs.com`), `trust-wrong-account` (the trust
   names another account's SAE), `trust-missing-sae` (nothing allows the app's SAE),
   `instance-id-missing` / `instance-id-mismatch` (Enterprise `AcrInstanceId`; the token is for no
   or another instance: 401, or `INSTANCE_NOT_EXIST`), `policy-not-attached`,
   `token-denied` / `token-not-allowed` (`cr:GetAuthorizationToken` on `*`, where ACR checks
   it; a grant scoped to the instance is no grant),
   `pull-denied` / `pull-not-allowed` (`cr:PullRepository` on the repository: 403);
   with a secret (401 each): `secret-missing`, `secret-wrong-namespace`, `secret-wrong-type`,
   `secret-no-login-for-host`, `secret-login-rejected`.
   A role and each listed secret are tried in turn, as kubelet tries every credential; the pull
   is authorized when one works, otherwise the first one's failure is the verdict.
5. manifest (404 `not found`): `repo-missing`, `tag-missing`, `digest-missing`.

Messages follow kubelet/containerd (`Failed to pull image "<url>": rpc error: ...`), or SAE's
`failed to get ACR credential with role <arn>: ...`; they name hosts, addresses, ids and ARNs,
never a password, token or secret value. Fake server addresses are stable per domain (a VPC
domain dials the instance's VPC-endpoint address when it has one).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

from sandbox import chosen_codes
from sandbox.policy import Decision, PolicyDocument, Principal, evaluate, trust_allows
from sandbox.services import cr, ram, vpc
from sandbox.services.sae import secrets
from sandbox.services.sae.documents import NAMESPACE, Namespace
from sandbox.services.sts import ROLE_ARN
from sandbox.store import Doc, Scope, Tx
from sandbox.world import World

SAE_SERVICE = "sae.aliyuncs.com"

REASONS = (
    "image-reference-invalid",
    "registry-unknown",
    "vpc-domain-unresolved",
    "vpc-domain-other-region",
    "vpc-not-connected",
    "no-nat-gateway",
    "no-snat-entry",
    "internet-endpoint-disabled",
    "eip-not-whitelisted",
    "no-credentials",
    "role-arn-invalid",
    "role-wrong-account",
    "role-missing",
    "trust-denied",
    "trust-wrong-account",
    "trust-missing-sae",
    "instance-id-missing",
    "instance-id-mismatch",
    "policy-not-attached",
    "token-denied",
    "token-not-allowed",
    "pull-denied",
    "pull-not-allowed",
    "secret-missing",
    "secret-wrong-namespace",
    "secret-wrong-type",
    "secret-no-login-for-host",
    "secret-login-rejected",
    "repo-missing",
    "tag-missing",
    "digest-missing",
)
"""Every `PullVerdict.reason` of a failed pull, in the order the checks run."""

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"(?P<name>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{4,}))?"
)
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*(?::\d+)?")
_PERSONAL_HOST = re.compile(r"registry(?P<vpc>-vpc)?\.(?P<region>[a-z]+-[a-z0-9-]+)\.aliyuncs\.com")
_SAE_PRINCIPAL = re.compile(rf"(\d+)@{re.escape(SAE_SERVICE)}", re.IGNORECASE)

_AUTH_STAGE = "auth"
_LOGIN_RESOURCE = "*"
"""The resource ACR authenticates `cr:GetAuthorizationToken` on, for every instance and edition:
`*` in ACR's "RAM authentication rules" table (Container Registry: RAM authorization
information, https://www.alibabacloud.com/help/en/acr/user-guide/ram-authorization-information)
and "All Resources" on the API's page (https://help.aliyun.com/document_detail/451390.htm). Only a
statement whose Resource matches the string `*` grants it: one scoped to the instance does not."""


@dataclass(frozen=True)
class PullVerdict:
    ok: bool
    reason: str = ""
    """Machine-readable cause for the sandbox's own bookkeeping (never sent in an API field
    a real service would not have): one of the kebab-case reasons in the module docstring."""
    message: str = ""
    """The task error message, in the style of the real one (containerd / SAE wording)."""
    stage: str = ""
    """Where the pull stopped: reference, resolve, network, auth or manifest (empty when ok)."""
    digest: str = ""
    """The manifest digest pulled, when ok."""


class _PullError(Exception):
    """One failed check; carries the verdict so the checks read top to bottom."""

    def __init__(self, stage: str, reason: str, message: str) -> None:
        super().__init__(reason)
        self.verdict = PullVerdict(ok=False, reason=reason, message=message, stage=stage)


@dataclass(frozen=True)
class _Image:
    """A parsed image reference: `host/ns/repo[:tag][@digest]` (the tag defaults to latest)."""

    given: str
    host: str
    name: str
    tag: str
    digest: str

    @property
    def ref(self) -> str:
        """The normalized reference containerd reports."""
        return f"{self.host}/{self.name}" + (f"@{self.digest}" if self.digest else f":{self.tag}")

    @property
    def manifest(self) -> str:
        return self.digest or self.tag

    @property
    def lookup_host(self) -> str:
        return self.host.lower().split(":", 1)[0]


@dataclass(frozen=True)
class _Registry:
    """The registry an image host names; `doc` is None for a Personal domain whose repository
    namespace belongs to no instance (the host resolves, the repository does not exist)."""

    region: str
    vpc: bool
    personal: bool
    scope: Scope | None
    doc: Doc | None
    module: str


class _Say:
    """The messages a failed pull of one image produces."""

    def __init__(self, image: _Image) -> None:
        self.image = image

    def containerd(self, detail: str) -> str:
        i = self.image
        return (
            f'Failed to pull image "{i.given}": rpc error: code = Unknown desc = failed to pull '
            f'and unpack image "{i.ref}": failed to resolve reference "{i.ref}": {detail}'
        )

    def dial(self, error: str) -> str:
        i = self.image
        url = f"https://{i.host}/v2/{i.name}/manifests/{i.manifest}"
        return self.containerd(f'failed to do request: Head "{url}": {error}')

    def no_such_host(self) -> str:
        return self.dial(f"dial tcp: lookup {self.image.host}: no such host")

    def timeout(self, address: str) -> str:
        return self.dial(f"dial tcp {address}:443: i/o timeout")

    def status(self, status: str) -> str:
        i = self.image
        return self.containerd(
            f"pulling from host {i.host} failed with status code [manifests {i.manifest}]: {status}"
        )

    def not_found(self) -> str:
        return self.containerd(f"{self.image.ref}: not found")

    def credential(self, arn: str, step: str, code: str, text: str) -> str:
        return (
            f'Failed to pull image "{self.image.given}": failed to get ACR credential with role '
            f"{arn}: {step} failed: {code}: {text}"
        )

    def invalid(self) -> str:
        given = self.image.given
        return (
            f'Failed to apply default image tag "{given}": couldn\'t parse image reference '
            f'"{given}": invalid reference format'
        )


def judge_image_pull(
    tx: Tx,
    world: World,
    *,
    app_account: str,
    region: str,
    namespace: Namespace,
    config: Mapping[str, str],
    now: float | None = None,
) -> PullVerdict:
    """`config` holds the app's deploy parameters by wire name (ImageUrl, AcrInstanceId,
    AcrAssumeRoleArn, ImagePullSecrets, ...); `namespace` is the SAE namespace document
    (VpcId, VSwitchId, NamespaceId, RegionId); `now` (epoch seconds, default the wall clock)
    decides whether temporary registry logins have expired and switched endpoints settled."""
    image = _parse(str(config.get("ImageUrl", "")))
    say = _Say(image)
    try:
        if image.name == "":
            raise _PullError("reference", "image-reference-invalid", say.invalid())
        registry = _resolve(tx, image, say)
        moment = time.time() if now is None else now
        _reach(tx, world, app_account, region, namespace, image, registry, say, moment)
        if registry.doc is None or registry.scope is None:
            raise _PullError("manifest", "repo-missing", say.not_found())
        if registry.scope.account != app_account:
            _authorize(
                tx,
                app_account,
                namespace,
                config,
                image,
                registry.scope,
                registry.doc,
                moment,
                say,
            )
        digest = _manifest(registry.doc, image, say)
    except _PullError as failure:
        return failure.verdict
    return PullVerdict(ok=True, digest=digest)


# -- reference and registry ------------------------------------------------------------------------


def _parse(given: str) -> _Image:
    """Docker reference rules; an unparsable reference has an empty `name`."""
    text = given.strip()
    host, _, rest = text.partition("/")
    if not rest or not ("." in host or ":" in host or host == "localhost"):
        host, rest = "docker.io", text if "/" in text else f"library/{text}"
    match = _REFERENCE.fullmatch(rest)
    if not _HOST.fullmatch(host) or match is None:
        return _Image(given, host, "", "latest", "")
    return _Image(given, host, match["name"], match["tag"] or "latest", match["digest"] or "")


def _resolve(tx: Tx, image: _Image, say: _Say) -> _Registry:
    host = image.lookup_host
    namespace = image.name.split("/", 1)[0]
    found = cr.instance_for_domain(tx, host, namespace)
    if found is not None:
        scope, doc = found
        for module, endpoints in doc["endpoints"].items():
            for kind in ("internet", "vpc"):
                if endpoints[kind]["domain"] == host:
                    personal = doc["edition"] == "personal"
                    return _Registry(scope.region, kind == "vpc", personal, scope, doc, module)
    personal_host = _PERSONAL_HOST.fullmatch(host)
    if personal_host is not None:
        return _Registry(
            personal_host["region"], bool(personal_host["vpc"]), True, None, None, "Registry"
        )
    raise _PullError("resolve", "registry-unknown", say.no_such_host())


def _address(image: _Image, registry: _Registry) -> str:
    """The stable fake address a registry domain resolves to."""
    if registry.vpc and registry.doc is not None:
        links = registry.doc["endpoints"][registry.module]["vpc"]["links"]
        if links:
            return str(links[0]["ip"])
    digest = hashlib.sha256(image.lookup_host.encode()).digest()
    prefix = "100.103" if registry.vpc else "118.178"
    return f"{prefix}.{digest[0]}.{digest[1] or 1}"


# -- network ---------------------------------------------------------------------------------------


def _reach(
    tx: Tx,
    world: World,
    account: str,
    region: str,
    namespace: Namespace,
    image: _Image,
    registry: _Registry,
    say: _Say,
    now: float,
) -> None:
    def blocked(reason: str) -> _PullError:
        return _PullError("network", reason, say.timeout(_address(image, registry)))

    scope = Scope(account, region)
    vswitch = tx.get(scope, vpc.VSWITCH, str(namespace["VSwitchId"]))
    source = ipaddress.IPv4Network(vswitch["CidrBlock"]) if vswitch else None
    if registry.vpc:
        _reach_over_vpc(world, region, str(namespace["VpcId"]), image, registry, say, now)
        return
    egress = _egress_ips(tx, scope, namespace, source, blocked)
    if registry.personal or registry.doc is None:
        return
    internet = registry.doc["endpoints"][registry.module]["internet"]
    if not internet["enabled"] or cr.internet_status(internet, now) != cr.RUNNING:
        raise blocked("internet-endpoint-disabled")
    acl = [ipaddress.IPv4Network(entry["entry"], strict=False) for entry in internet["acl"]]
    # An SNAT entry with several EIPs sends each connection from any one of them ("if SnatIp
    # specifies multiple public IP addresses, the ECS instance randomly uses the public IP
    # address in SnatIp", CreateSnatEntry, https://www.alibabacloud.com/help/doc-detail/120259.htm),
    # so the strict reading: a pull gets through only when the ACL admits every one of them.
    if acl and not all(any(ip in network for network in acl) for ip in egress):
        raise blocked("eip-not-whitelisted")


def _reach_over_vpc(
    world: World,
    region: str,
    app_vpc: str,
    image: _Image,
    registry: _Registry,
    say: _Say,
    now: float,
) -> None:
    """A `-vpc` domain. Enterprise: ACR resolves the domain through PrivateZone for the linked
    VPCs only ("Configure a VPC ACL",
    https://www.alibabacloud.com/help/en/acr/user-guide/configure-access-over-vpcs), and a link
    counts once its Status is RUNNING; another VPC, in this region or another, reaches the
    endpoint over CEN to a linked VPC (https://alibabacloud.com/help/en/acr/use-cases/access-enterprise-edition-instances-across-regions-or-from-idc)
    once its own DNS points the domain there. The endpoint has no CIDR list of its own."""

    def blocked(reason: str) -> _PullError:
        return _PullError("network", reason, say.timeout(_address(image, registry)))

    if registry.personal or registry.doc is None:
        if registry.region != region:
            raise blocked("vpc-domain-other-region")
        return
    links = registry.doc["endpoints"][registry.module]["vpc"]["links"]
    running = {str(link["vpc"]) for link in links if cr.link_status(link, now) == cr.RUNNING}
    if app_vpc in running:
        return
    found = world.vpc(app_vpc)
    zones = found[1].private_zones if found else []
    host = image.lookup_host
    if not any(host == zone or host.endswith(f".{zone}") for zone in zones):
        raise _PullError("resolve", "vpc-domain-unresolved", say.no_such_host())
    peers = {b if a == app_vpc else a for a, b in world.cen_pairs() if app_vpc in (a, b)}
    if not peers & running:
        raise blocked(
            "vpc-domain-other-region" if registry.region != region else "vpc-not-connected"
        )


def _egress_ips(
    tx: Tx,
    scope: Scope,
    namespace: Namespace,
    source: ipaddress.IPv4Network | None,
    blocked: Callable[[str], _PullError],
) -> tuple[ipaddress.IPv4Address, ...]:
    """The EIPs the app's vSwitch reaches the Internet with: those of the most specific SNAT
    entry (`SnatIp` is comma-separated)."""
    nats = {
        str(nat["NatGatewayId"])
        for nat in tx.all(scope, vpc.NAT)
        if nat["VpcId"] == namespace["VpcId"]
        and nat.get("NetworkType", "internet") == "internet"
        and nat.get("Status", "Available") == "Available"
    }
    if not nats:
        raise blocked("no-nat-gateway")
    eips = {(str(eip.get("InstanceId")), str(eip["IpAddress"])) for eip in tx.all(scope, vpc.EIP)}
    best: tuple[int, tuple[ipaddress.IPv4Address, ...]] | None = None
    for entry in tx.all(scope, vpc.SNAT):
        nat_id = str(entry["NatGatewayId"])
        if nat_id not in nats or entry.get("Status", "Available") != "Available":
            continue
        if entry.get("SourceVSwitchId") == namespace["VSwitchId"]:
            specificity = 33
        elif source is not None and entry.get("SourceCIDR"):
            covering = ipaddress.IPv4Network(entry["SourceCIDR"], strict=False)
            if not source.subnet_of(covering):
                continue
            specificity = covering.prefixlen
        else:
            continue
        ips = [ip.strip() for ip in str(entry["SnatIp"]).split(",") if (nat_id, ip.strip()) in eips]
        if ips and (best is None or specificity > best[0]):
            best = (specificity, tuple(ipaddress.IPv4Address(ip) for ip in ips))
    if best is None:
        raise blocked("no-snat-entry")
    return best[1]


# -- authorization ---------------------------------------------------------------------------------


def _authorize(
    tx: Tx,
    app_account: str,
    namespace: Namespace,
    config: Mapping[str, str],
    image: _Image,
    scope: Scope,
    doc: Doc,
    now: float,
    say: _Say,
) -> None:
    """Some credential must let the app's SAE pull: a role, or a listed secret (in turn)."""
    role_arn = str(config.get("AcrAssumeRoleArn") or "").strip()
    secret_ids = [s.strip() for s in str(config.get("ImagePullSecrets") or "").split(",")]
    attempts: list[Callable[[], None]] = []
    if role_arn:
        attempts.append(
            partial(_by_role, tx, app_account, config, image, scope, doc, role_arn, say)
        )
    attempts += [
        partial(_by_secret, tx, app_account, namespace, image, doc, secret_id, now, say)
        for secret_id in secret_ids
        if secret_id
    ]
    if not attempts:
        raise _PullError(_AUTH_STAGE, "no-credentials", say.status("401 Unauthorized"))
    failures: list[_PullError] = []
    for attempt in attempts:
        try:
            attempt()
        except _PullError as failure:
            failures.append(failure)
        else:
            return
    raise failures[0]


_Refuse = Callable[[str, str, str, str], _PullError]
"""(reason, step, code, text) -> the failure of one step of getting SAE's ACR credential."""


def _by_role(
    tx: Tx,
    app_account: str,
    config: Mapping[str, str],
    image: _Image,
    scope: Scope,
    doc: Doc,
    arn: str,
    say: _Say,
) -> None:
    """SAE assumes the role in the registry's account, takes an ACR token with it and pulls:
    each step refuses as SAE reports it."""

    def refuse(reason: str, step: str, code: str, text: str) -> _PullError:
        return _PullError(_AUTH_STAGE, reason, say.credential(arn, step, code, text))

    role_name = _assume_role(tx, app_account, scope.account, doc, arn, refuse)
    if doc["edition"] == "enterprise":
        _check_instance_id(tx, config, scope.account, doc, refuse, say)
    _check_grants(tx, scope, role_name, image, doc, refuse, say)


def _assume_role(tx: Tx, app_account: str, owner: str, doc: Doc, arn: str, refuse: _Refuse) -> str:
    """The name of the role the app's SAE may assume in the registry's account `owner`."""
    match = ROLE_ARN.fullmatch(arn)
    if match is None:
        raise refuse(
            "role-arn-invalid",
            "assume role",
            "InvalidParameter.RoleArn",
            "The parameter RoleArn is wrongly formed.",
        )
    role_account, role_name = match.group(1), match.group(2)
    if role_account != owner:
        raise refuse(
            "role-wrong-account",
            "get authorization token",
            chosen_codes.CR_INSTANCE_NOT_EXIST.code,
            f"The instance {doc['id']} does not exist.",
        )
    role = ram.find_role(tx, role_account, role_name)
    if role is None:
        raise refuse(
            "role-missing", "assume role", "EntityNotExist.Role", "The specified Role not exists."
        )
    trust = ram.trust_document(role)
    decision = trust_allows(trust, Principal(app_account, "service", SAE_SERVICE), owner)
    if not decision.allowed:
        raise refuse(
            _trust_refusal(trust, decision, app_account),
            "assume role",
            "NoPermission",
            "You are not authorized to do this action. You should be authorized by RAM.",
        )
    return role_name


def _trust_refusal(trust: PolicyDocument, decision: Decision, app_account: str) -> str:
    """Why the trust policy does not let the app's SAE assume the role."""
    if decision is Decision.DENY:
        return "trust-denied"
    if any(
        (m := _SAE_PRINCIPAL.fullmatch(entry)) is not None and m.group(1) != app_account
        for statement in trust.statements
        if statement.effect == "Allow"
        for entry in statement.principals.get("Service", ())
    ):
        return "trust-wrong-account"
    return "trust-missing-sae"


def _check_instance_id(
    tx: Tx, config: Mapping[str, str], owner: str, doc: Doc, refuse: _Refuse, say: _Say
) -> None:
    """Enterprise: the token is for the instance `AcrInstanceId` names: it must be the image's."""
    instance_id = str(config.get("AcrInstanceId") or "").strip()
    if not instance_id:
        raise _PullError(_AUTH_STAGE, "instance-id-missing", say.status("401 Unauthorized"))
    if instance_id != doc["id"]:
        if cr.find_instance(tx, owner, instance_id) is None:
            raise refuse(
                "instance-id-mismatch",
                "get authorization token",
                chosen_codes.CR_INSTANCE_NOT_EXIST.code,
                f"The instance {instance_id} does not exist.",
            )
        raise _PullError(_AUTH_STAGE, "instance-id-mismatch", say.status("401 Unauthorized"))


def _check_grants(
    tx: Tx,
    scope: Scope,
    role_name: str,
    image: _Image,
    doc: Doc,
    refuse: _Refuse,
    say: _Say,
) -> None:
    """The role's permission policies must grant the token and the pull of this repository."""
    owner = scope.account
    documents = ram.role_permission_documents(tx, owner, role_name)
    base = f"acs:cr:{scope.region}:{owner}"
    token = evaluate(documents, "cr:GetAuthorizationToken", _LOGIN_RESOURCE)
    if not token.allowed:
        if not documents:
            reason = "policy-not-attached"
        else:
            reason = "token-denied" if token is Decision.DENY else "token-not-allowed"
        raise refuse(
            reason, "get authorization token", "NoPrivilege", "Access denied for this user."
        )
    # ACR authenticates cr:PullRepository on the repository: Enterprise
    # `repository/$instanceid/$namespacename/$repositoryname` (the "RAM authentication rules" ARN
    # table), Personal Edition `repository/$namespacename/$repositoryname` ("Repository access
    # control", https://www.alibabacloud.com/help/doc-detail/67992.htm).
    repository = f"{base}:repository/" + (
        image.name if doc["edition"] == "personal" else f"{doc['id']}/{image.name}"
    )
    pull = evaluate(documents, "cr:PullRepository", repository)
    if not pull.allowed:
        reason = "pull-denied" if pull is Decision.DENY else "pull-not-allowed"
        raise _PullError(_AUTH_STAGE, reason, say.status("403 Forbidden"))


def _by_secret(
    tx: Tx,
    app_account: str,
    namespace: Namespace,
    image: _Image,
    doc: Doc,
    secret_id: str,
    now: float,
    say: _Say,
) -> None:
    """kubelet reads the secret from the app's namespace; any problem means an anonymous pull."""

    def refuse(reason: str) -> _PullError:
        return _PullError(_AUTH_STAGE, reason, say.status("401 Unauthorized"))

    number = int(secret_id) if secret_id.isdecimal() else 0
    secret = secrets.find_secret(tx, app_account, str(namespace["NamespaceId"]), number)
    if secret is None:
        elsewhere = any(
            secrets.find_secret(tx, app_account, str(other["NamespaceId"]), number) is not None
            for where, other in tx.list_everywhere(NAMESPACE)
            if where.account == app_account and other["NamespaceId"] != namespace["NamespaceId"]
        )
        raise refuse("secret-wrong-namespace" if elsewhere else "secret-missing")
    if secret.get("SecretType") != secrets.DOCKER_CONFIG_JSON:
        raise refuse("secret-wrong-type")
    logins = {host.lower(): login for host, login in secrets.docker_logins(secret).items()}
    login = logins.get(image.lookup_host)
    if login is None:
        raise refuse("secret-no-login-for-host")
    if not cr.accepts_login(doc, login[0], login[1], now):
        raise refuse("secret-login-rejected")


# -- manifest --------------------------------------------------------------------------------------


def _manifest(doc: Doc, image: _Image, say: _Say) -> str:
    """The digest the reference names, or the 404 containerd reports as `not found`."""
    repo = next(
        (r for r in doc["repos"] if f"{r['namespace']}/{r['name']}" == image.name),
        None,
    )
    if repo is None:
        raise _PullError("manifest", "repo-missing", say.not_found())
    if image.digest:
        if any(t["digest"] == image.digest for t in repo["tags"]):
            return image.digest
        raise _PullError("manifest", "digest-missing", say.not_found())
    tag = next((t for t in repo["tags"] if t["tag"] == image.tag), None)
    if tag is None:
        raise _PullError("manifest", "tag-missing", say.not_found())
    return str(tag["digest"])
