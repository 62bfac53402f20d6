"""ACR Enterprise Edition 2018-12-01: instances, endpoints and their whitelists, VPC links, images.

Each instance is one store document (kind `acr_instance`, scope = owner account and region) that
holds its endpoint state per module (`Registry`, `Chart`), the internet whitelist, the linked VPCs,
the repositories with their tags, and the temporary logins `GetAuthorizationToken` issued. Personal
Edition instances are stored too (kind `acr_personal`, same shape) so the image-pull judgment can
resolve `registry[-vpc].<region>.aliyuncs.com`, but this API never shows them.

Requests carry no RegionId: an instance is found by id among the caller's own instances in the
region the request addressed (sandbox/regions.py), so another account's instance, or one in
another region, is simply "not found" (reference section 6.1).

Error codes: the service documents none for a missing instance, repository, tag, VPC or vSwitch
(reference section 9, item 15), so those are the sandbox's choice, in `sandbox.chosen_codes`,
answered with HTTP 200 and `IsSuccess: false` as Terraform's provider expects ACR may answer.
Malformed input (endpoint type, CIDR, JSON) is the gateway's 400 `InvalidParameter`.

Switching the internet endpoint takes time: `GetInstanceEndpoint` says `CREATING` (switched on) or
`DELETING` (switched off) for `timing.endpoint_transition_seconds`, then `RUNNING` (the documented
Status values: CREATING, RUNNING, DELETING; GetInstanceEndpoint,
https://help.aliyun.com/zh/acr/developer-reference/api-cr-2018-12-01-getinstanceendpoint).
Terraform's `alicloud_cr_endpoint_acl_service` waits for `RUNNING` after switching it, and its
`alicloud_cr_endpoint_acl_policy` example writes entries only after that (and retries
`SLB_SERVICE_ERROR`); what a write before `RUNNING` does is not documented, so the sandbox takes
the stricter reading: the ACL write is answered as a success and dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from typing import Any

from sandbox import chosen_codes
from sandbox.auth import KEY_KIND, KEY_SCOPE
from sandbox.call import Call, iso_time
from sandbox.errors import invalid_parameter, missing_parameter
from sandbox.store import Doc, Scope, Tx
from sandbox.world import AcrInstance, InternetEndpoint, VpcEndpoint, World, linkable_vswitches

INSTANCE = "acr_instance"
PERSONAL = "acr_personal"

MODULES = ("Registry", "Chart")
TEMP_USERNAME = "cr_temp_user"
DEFAULT_ACL_ENTRY = "127.0.0.1/32"
DEFAULT_ACL_COMMENT = "added when the internet endpoint was enabled"
RUNNING = "RUNNING"
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 30
INSTANCE_STATUSES = (
    "PENDING",
    "INIT_ERROR",
    "STARTING",
    "RUNNING",
    "STOPPING",
    "STOPPED",
    "DELETING",
    "DELETED",
)
REPO_STATUSES = ("NORMAL", "DELETING", "DELETED", "ALL")

_CIDR = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}/\d{1,2}$")


# -- lookups shared with the image-pull judgment ---------------------------------------------------


def find_instance(tx: Tx, account_uid: str, instance_id: str) -> tuple[Scope, Doc] | None:
    """An Enterprise instance of this account, in whichever region it lives."""
    for scope, doc in tx.list_everywhere(INSTANCE):
        if scope.account == account_uid and doc["id"] == instance_id:
            return scope, doc
    return None


def instance_for_domain(
    tx: Tx, domain: str, namespace: str | None = None
) -> tuple[Scope, Doc] | None:
    """The instance a registry domain (public or VPC, any module) belongs to, in any account.

    Personal Edition domains are shared by every account of a region, so for them the repository
    namespace (globally unique in the real service) picks the owner; without it they match nothing.
    """
    host = domain.lower().split(":", 1)[0]
    for kind in (INSTANCE, PERSONAL):
        for scope, doc in tx.list_everywhere(kind):
            if host not in instance_domains(doc):
                continue
            if kind == INSTANCE or namespace in {r["namespace"] for r in doc["repos"]}:
                return scope, doc
    return None


def instance_domains(doc: Doc) -> set[str]:
    return {
        doc["endpoints"][module][kind]["domain"]
        for module in doc["endpoints"]
        for kind in ("internet", "vpc")
    }


def internet_status(endpoint: Doc, now: float) -> str:
    """`CREATING`/`DELETING` while a switch of the internet endpoint settles, else `RUNNING`."""
    if now < float(endpoint.get("settles_at", 0.0)):
        return "CREATING" if endpoint["enabled"] else "DELETING"
    return RUNNING


def accepts_login(doc: Doc, username: str, password: str, now: float) -> bool:
    """Whether a registry login works: the instance's own login, or an unexpired temporary one."""
    logins = [doc["login"]] + [t for t in doc["temp_logins"] if t["expires_ms"] > int(now * 1000)]
    return any(
        hmac.compare_digest(t["username"].encode(), username.encode())
        and hmac.compare_digest(t["password"].encode(), password.encode())
        for t in logins
    )


# -- seeding ---------------------------------------------------------------------------------------


def _stable_id(prefix: str, *parts: str, length: int = 16) -> str:
    """Ids that survive a reset, so clients and tests may keep them."""
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()
    return f"{prefix}{digest[:length]}"


def _domains(inst: AcrInstance, region: str, module: str) -> tuple[str, str]:
    """The (public, VPC) domains of an instance module (reference section 6.5)."""
    if inst.edition == "personal":
        return f"registry.{region}.aliyuncs.com", f"registry-vpc.{region}.aliyuncs.com"
    label = "registry" if module == "Registry" else "chart"
    return (
        f"{inst.name}-{label}.{region}.cr.aliyuncs.com",
        f"{inst.name}-{label}-vpc.{region}.cr.aliyuncs.com",
    )


def _endpoint_ip(instance_id: str, vswitch_cidr: str) -> str:
    """A fixed address inside the vSwitch for the instance's VPC endpoint."""
    network = ipaddress.IPv4Network(vswitch_cidr)
    hosts = network.num_addresses - 2
    if hosts < 1:
        return str(network.network_address)
    return str(network[1 + int(_stable_id("", instance_id, length=8), 16) % min(hosts, 200)])


def _link(
    world: World, region: str, inst: AcrInstance, vpc_id: str, vswitch_id: str, ready_at: float
) -> Doc:
    """A VPC link, RUNNING from `ready_at`; a world file may leave the vSwitch out, and then the
    first one the instance's account may use is taken (its own, or one shared with it)."""
    vpc = next(v for v in world.regions[region].vpcs if v.id == vpc_id)
    usable = linkable_vswitches(vpc, inst.account)
    vswitch = next((s for s in usable if s.id == vswitch_id or not vswitch_id), None)
    return {
        "vpc": vpc_id,
        "vswitch": vswitch.id if vswitch else vswitch_id,
        "ip": _endpoint_ip(inst.id, vswitch.cidr if vswitch else vpc.cidr),
        "ready_at": ready_at,
    }


def link_status(link: Doc, now: float) -> str:
    """A VPC link is CREATING until it is ready, then RUNNING (GetInstanceVpcEndpoint's
    LinkedVpcs Status values); only a RUNNING link carries traffic. ACR's console says to wait
    until the Status is Running (cross-account access by VPC sharing, see `_linkable`)."""
    return RUNNING if now >= float(link.get("ready_at", 0.0)) else "CREATING"


def _endpoints(world: World, region: str, inst: AcrInstance, module: str) -> Doc:
    """A module's endpoint state; the world file describes the Registry module, Chart starts off."""
    public, private = _domains(inst, region, module)
    internet, vpc = inst.internet_endpoint, inst.vpc_endpoint
    if module != "Registry":
        internet, vpc = InternetEndpoint(enabled=False), VpcEndpoint()
    return {
        "internet": {
            "domain": public,
            "enabled": internet.enabled,
            "settles_at": 0.0,
            "acl": [{"entry": a.entry, "comment": a.comment} for a in internet.acl],
        },
        "vpc": {
            "domain": private,
            "links": [
                _link(world, region, inst, link.vpc, link.vswitch, 0.0) for link in vpc.linked_vpcs
            ],
        },
    }


def _new_instance(world: World, region: str, inst: AcrInstance, now_ms: int) -> Doc:
    account = world.account(inst.account).uid
    repos = []
    for full_name, repo in inst.repos.items():
        namespace, name = full_name.split("/")
        count = len(repo.tags)
        repos.append(
            {
                "id": _stable_id("crr-", inst.id, full_name),
                "namespace": namespace,
                "name": name,
                "created_ms": now_ms - (count + 1) * 60_000,
                "modified_ms": now_ms,
                "tags": [
                    {
                        "tag": tag,
                        "digest": digest,
                        "image_id": _stable_id("", digest, length=64),
                        "size": 10_000_000 + int(_stable_id("", digest, "size"), 16) % 190_000_000,
                        "created_ms": now_ms - (count - i) * 60_000,
                    }
                    for i, (tag, digest) in enumerate(repo.tags.items())
                ],
            }
        )
    return {
        "id": inst.id,
        "name": inst.name,
        "account": account,
        "region": region,
        "edition": inst.edition,
        "status": "RUNNING",
        "specification": "Enterprise_Basic" if inst.edition == "enterprise" else "Personal",
        "resource_group": _stable_id("rg-acfm", account, length=11),
        "created_ms": now_ms - 86_400_000,
        "modified_ms": now_ms,
        "endpoints": {m: _endpoints(world, region, inst, m) for m in MODULES},
        "login": {"username": inst.login.username, "password": inst.login.password},
        "temp_logins": [],
        "repos": repos,
    }


def seed(tx: Tx, world: World) -> None:
    now_ms = int(time.time() * 1000)
    for region, spec in world.regions.items():
        for inst in spec.acr_instances:
            doc = _new_instance(world, region, inst, now_ms)
            kind = INSTANCE if inst.edition == "enterprise" else PERSONAL
            tx.put(Scope(doc["account"], region), kind, inst.id, doc)


# -- request helpers -------------------------------------------------------------------------------


def _instance(call: Call) -> tuple[Scope, Doc]:
    instance_id = call.params.text("InstanceId")
    found = find_instance(call.tx, call.caller.account, instance_id)
    if found is None or found[0].region != call.region():
        # An instance in another region is not served by this region's endpoint.
        raise chosen_codes.CR_INSTANCE_NOT_EXIST.error(
            f"The instance {instance_id} does not exist."
        )
    return found


def _save(call: Call, scope: Scope, doc: Doc) -> None:
    doc["modified_ms"] = int(call.now * 1000)
    call.tx.put(scope, INSTANCE, doc["id"], doc)


def _module(call: Call) -> str:
    return call.params.choice("ModuleName", MODULES, default="Registry")


def _internet_only(call: Call) -> None:
    """The whitelist and status APIs take only the public endpoint (reference section 6.2)."""
    value = call.params.text("EndpointType")
    if value.lower() != "internet":
        raise invalid_parameter("EndpointType", f"{value!r} is not supported; use internet")


def _cidr(value: Any, name: str) -> str:
    """An IPv4 CIDR with an explicit prefix and no host bits, kept as given."""
    text = value if isinstance(value, str) else ""
    try:
        if not _CIDR.match(text):
            raise ValueError
        ipaddress.IPv4Network(text)
    except ValueError:
        raise invalid_parameter(name, f"{value!r} is not an IPv4 CIDR block") from None
    return text


def _acl_entries(call: Call) -> list[Doc]:
    """The entry of an ACL call: `Entry` (+ `Comment`). The metadata (sandbox/api_meta) marks
    `Entry` required and knows no batch `Entries`, so the gateway has already refused a call
    without it; that it is a CIDR block is the API page's rule (reference 6.2)."""
    entry = call.params.text("Entry")
    return [{"entry": _cidr(entry, "Entry"), "comment": call.params.text("Comment")}]


def _page(call: Call, items: list[Doc], *, text_total: bool) -> tuple[list[Doc], Doc]:
    """PageNo/PageSize paging (the metadata knows no MaxResults/NextToken).

    `TotalCount` is a string in the repository APIs and a number in ListInstance. The metadata
    types both as int32 without a range; page numbers below 1 and sizes outside 1..100 are
    refused, the stricter reading of the API pages' defaults (PageNo 1, PageSize 30).
    """
    total: int | str = str(len(items)) if text_total else len(items)
    number = call.params.integer("PageNo", default=1, minimum=1)
    size = call.params.integer(
        "PageSize", default=DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE
    )
    start = (number - 1) * size
    return items[start : start + size], {"PageNo": number, "PageSize": size, "TotalCount": total}


def _repo(call: Call, doc: Doc) -> Doc:
    """A repository by `RepoId`, or by `RepoNamespaceName` + `RepoName`."""
    repo_id = call.params.text("RepoId")
    namespace, name = call.params.text("RepoNamespaceName"), call.params.text("RepoName")
    if not repo_id and not (namespace and name):
        raise missing_parameter("RepoId")
    for repo in doc["repos"]:
        if repo["id"] == repo_id or (
            not repo_id and (repo["namespace"], repo["name"]) == (namespace, name)
        ):
            return dict(repo)
    raise chosen_codes.CR_REPO_NOT_EXIST.error("The repository does not exist.")


# -- views -----------------------------------------------------------------------------------------


def _instance_view(doc: Doc, *, listed: bool) -> Doc:
    """GetInstance gives times in epoch ms; ListInstance gives text times and the region."""
    view: Doc = {
        "InstanceId": doc["id"],
        "InstanceName": doc["name"],
        "InstanceStatus": doc["status"],
        "InstanceSpecification": doc["specification"],
        "InstanceIssue": "",
        "ResourceGroupId": doc["resource_group"],
        "Tags": [],
        "CreateTime": doc["created_ms"],
        "ModifiedTime": doc["modified_ms"],
    }
    if listed:
        view.update(
            RegionId=doc["region"],
            CreateTime=iso_time(doc["created_ms"] / 1000),
            ModifiedTime=iso_time(doc["modified_ms"] / 1000),
        )
    return view


def _endpoint_view(
    doc: Doc, module: str, kind: str, now: float, *, summary: bool = False, listed: bool = False
) -> Doc:
    """One endpoint as GetInstanceEndpoint / ListInstanceEndpoint show it.

    The public endpoint's whitelist is in force while it has entries; an emptied whitelist opens
    the endpoint to the whole Internet (reference section 6.2), so `AclEnable` is false then.
    """
    state = doc["endpoints"][module][kind]
    links = state.get("links", [])
    view: Doc = {
        "EndpointType": kind,
        "Status": internet_status(state, now) if kind == "internet" else RUNNING,
        "Enable": state["enabled"] if kind == "internet" else bool(links),
        "Domains": [{"Domain": state["domain"], "Type": "SYSTEM"}],
        "LinkedVpcs": [{"VpcId": link["vpc"]} for link in links],
    }
    if not summary:
        # The VPC endpoint has no CIDR list: its access control is the list of linked VPCs.
        acl = state["acl"] if kind == "internet" else []
        view["AclEnable"] = bool(acl)
        # ListInstanceEndpoint's SDK model has no Comment in AclEntries (GetInstanceEndpoint's
        # has): alibabacloud_cr20181201 ListInstanceEndpointResponseBodyEndpointsAclEntries.
        view["AclEntries"] = [
            {"Entry": a["entry"]} if listed else {"Entry": a["entry"], "Comment": a["comment"]}
            for a in acl
        ]
    return view


def _repo_view(doc: Doc, repo: Doc, *, listed: bool = False) -> Doc:
    """`listed`: ListRepository's SDK model has no Detail (GetRepository's has):
    alibabacloud_cr20181201 ListRepositoryResponseBodyRepositories."""
    view = {
        "InstanceId": doc["id"],
        "RepoId": repo["id"],
        "RepoNamespaceName": repo["namespace"],
        "RepoName": repo["name"],
        "RepoType": "PRIVATE",
        "RepoStatus": "NORMAL",
        "RepoBuildType": "MANUAL",
        "TagImmutability": False,
        "Summary": "",
        "Detail": "",
        "ResourceGroupId": doc["resource_group"],
        "CreateTime": repo["created_ms"],
        "ModifiedTime": repo["modified_ms"],
    }
    if listed:
        del view["Detail"]
    return view


def _image_view(tag: Doc, *, listed: bool) -> Doc:
    """ListRepoTag gives the times as text, GetRepoTag as numbers (SDK models)."""
    created: int | str = str(tag["created_ms"]) if listed else tag["created_ms"]
    return {
        "Tag": tag["tag"],
        "Digest": tag["digest"],
        "ImageId": tag["image_id"],
        "ImageSize": tag["size"],
        "ImageCreate": created,
        "ImageUpdate": created,
        "Status": "NORMAL",
    }


# -- instances -------------------------------------------------------------------------------------


def list_instance(call: Call) -> dict[str, Any]:
    """The caller's Enterprise instances in the region the request addressed."""
    name = call.params.text("InstanceName")
    status = call.params.choice("InstanceStatus", INSTANCE_STATUSES)
    group = call.params.text("ResourceGroupId")
    found = [
        doc
        for scope, doc in call.tx.list_everywhere(INSTANCE)
        if scope.account == call.caller.account
        and scope.region == call.region()
        and (not name or doc["name"] == name)
        and (not status or doc["status"] == status)
        and (not group or doc["resource_group"] == group)
    ]
    chunk, fields = _page(call, found, text_total=False)
    return {"Instances": [_instance_view(d, listed=True) for d in chunk], **fields}


def get_instance(call: Call) -> dict[str, Any]:
    return _instance_view(_instance(call)[1], listed=False)


# -- endpoints and the whitelist -------------------------------------------------------------------


def list_instance_endpoint(call: Call) -> dict[str, Any]:
    _, doc = _instance(call)
    module, summary = _module(call), call.params.flag("Summary")
    return {
        "Endpoints": [
            _endpoint_view(doc, module, kind, call.now, summary=summary, listed=True)
            for kind in ("internet", "vpc")
        ]
    }


def get_instance_endpoint(call: Call) -> dict[str, Any]:
    _, doc = _instance(call)
    _internet_only(call)
    view = _endpoint_view(doc, _module(call), "internet", call.now)
    del view["EndpointType"], view["LinkedVpcs"]
    return view


def update_instance_endpoint_status(call: Call) -> dict[str, Any]:
    """Switch the public endpoint; switching it on with an empty whitelist allows only 127.0.0.1.

    (Reference section 6.2: enabling adds `127.0.0.1/32`, so a fresh endpoint is not wide open.)
    A switch starts a transition of `timing.endpoint_transition_seconds` (module docstring);
    asking for the state it is already in changes nothing.
    """
    scope, doc = _instance(call)
    _internet_only(call)
    module, enable = _module(call), call.params.flag("Enable")
    state = doc["endpoints"][module]["internet"]
    if enable == state["enabled"]:
        return {}
    if enable and not state["acl"]:
        state["acl"].append({"entry": DEFAULT_ACL_ENTRY, "comment": DEFAULT_ACL_COMMENT})
    state["enabled"] = enable
    state["settles_at"] = call.now + call.world.timing.endpoint_transition_seconds
    _save(call, scope, doc)
    return {}


def _settled_internet(call: Call, doc: Doc, module: str) -> Doc | None:
    """The internet endpoint an ACL write applies to; None while it is not RUNNING, when the write
    is answered as a success and dropped (module docstring)."""
    state: Doc = doc["endpoints"][module]["internet"]
    return state if internet_status(state, call.now) == RUNNING else None


def create_instance_endpoint_acl_policy(call: Call) -> dict[str, Any]:
    """Add whitelist entries. Idempotent: an entry is identified by its exact CIDR text (as the
    Terraform resource id `<instance>:<type>:<entry>` is), so re-adding one succeeds and keeps the
    first entry and its comment rather than duplicating it; a retry after a lost reply is safe."""
    scope, doc = _instance(call)
    _internet_only(call)
    module, entries = _module(call), _acl_entries(call)
    state = _settled_internet(call, doc, module)
    if state is None:
        return {}
    acl = state["acl"]
    for entry in entries:
        if entry["entry"] not in {a["entry"] for a in acl}:
            acl.append(entry)
    _save(call, scope, doc)
    return {}


def delete_instance_endpoint_acl_policy(call: Call) -> dict[str, Any]:
    """Remove whitelist entries by exact CIDR text. Removing an entry that is not there succeeds
    and changes nothing, mirroring the idempotent create."""
    scope, doc = _instance(call)
    _internet_only(call)
    module = _module(call)
    gone = {e["entry"] for e in _acl_entries(call)}
    state = _settled_internet(call, doc, module)
    if state is None:
        return {}
    state["acl"] = [a for a in state["acl"] if a["entry"] not in gone]
    _save(call, scope, doc)
    return {}


# -- VPC endpoint ----------------------------------------------------------------------------------


def get_instance_vpc_endpoint(call: Call) -> dict[str, Any]:
    _, doc = _instance(call)
    module = _module(call)
    state = doc["endpoints"][module]["vpc"]
    return {
        "Enable": bool(state["links"]),
        "Domains": [state["domain"]],
        "ModuleName": module,
        "LinkedVpcs": [
            {
                "VpcId": link["vpc"],
                "VswitchId": link["vswitch"],
                "Ip": link["ip"],
                "Status": link_status(link, call.now),
                "DefaultAccess": i == 0,
                "Issue": "",
            }
            for i, link in enumerate(state["links"])
        ],
    }


def _linkable(call: Call, region: str) -> tuple[str, str]:
    """`VpcId`/`VswitchId` naming a VPC in the region and a vSwitch of it the caller may use: its
    own, or one another account shares with it. ACR links another account's VPC once that VPC is
    shared with the instance's account (cross-account access by VPC sharing,
    https://www.alibabacloud.com/help/en/acr/user-guide/cross-account-access-to-container-registry-service-enterprise-edition-instances-by-using-vpc-sharing-service);
    a VPC the caller neither owns nor shares is not found, as in the VPC API."""
    vpc_id = call.params.text("VpcId")
    vswitch_id = call.params.text("VswitchId")
    spec = call.world.regions.get(region)
    caller = next(a.name for a in call.world.accounts if a.uid == call.caller.account)
    vpc = next(
        (
            v
            for v in (spec.vpcs if spec else [])
            if v.id == vpc_id and linkable_vswitches(v, caller)
        ),
        None,
    )
    if vpc is None:
        raise chosen_codes.CR_VPC_NOT_EXIST.error(f"The VPC {vpc_id} does not exist in {region}.")
    if vswitch_id not in {s.id for s in linkable_vswitches(vpc, caller)}:
        raise chosen_codes.CR_VSWITCH_NOT_EXIST.error(
            f"The vSwitch {vswitch_id} does not exist in {vpc_id}."
        )
    return vpc_id, vswitch_id


def create_instance_vpc_endpoint_linked_vpc(call: Call) -> dict[str, Any]:
    """Link a VPC (the caller's own, or shared with it) in the instance's region; the link is
    CREATING for `timing.endpoint_transition_seconds`, then RUNNING.

    Linking the same VPC and vSwitch again succeeds and changes nothing; a VPC is linked through
    one vSwitch only, so naming another vSwitch of an already linked VPC is a 409.
    """
    scope, doc = _instance(call)
    module = _module(call)
    call.params.flag("EnableCreateDNSRecordInPvzt")
    vpc_id, vswitch_id = _linkable(call, scope.region)
    links = doc["endpoints"][module]["vpc"]["links"]
    existing = next((link for link in links if link["vpc"] == vpc_id), None)
    if existing is not None:
        if existing["vswitch"] != vswitch_id:
            raise chosen_codes.CR_VPC_ALREADY_LINKED.error(
                f"The VPC {vpc_id} is already linked through {existing['vswitch']}."
            )
        return {}
    inst = next(i for i in call.world.regions[scope.region].acr_instances if i.id == doc["id"])
    ready_at = call.now + call.world.timing.endpoint_transition_seconds
    links.append(_link(call.world, scope.region, inst, vpc_id, vswitch_id, ready_at))
    _save(call, scope, doc)
    return {}


def delete_instance_vpc_endpoint_linked_vpc(call: Call) -> dict[str, Any]:
    """Unlink a VPC; unlinking one that is not linked (through that vSwitch) changes nothing."""
    scope, doc = _instance(call)
    module = _module(call)
    vpc_id = call.params.text("VpcId")
    vswitch_id = call.params.text("VswitchId")
    state = doc["endpoints"][module]["vpc"]
    state["links"] = [
        link for link in state["links"] if (link["vpc"], link["vswitch"]) != (vpc_id, vswitch_id)
    ]
    _save(call, scope, doc)
    return {}


# -- repositories and images -----------------------------------------------------------------------


def list_repository(call: Call) -> dict[str, Any]:
    _, doc = _instance(call)
    namespace, name = call.params.text("RepoNamespaceName"), call.params.text("RepoName")
    status = call.params.choice("RepoStatus", REPO_STATUSES, default="ALL")
    repos = [
        r
        for r in doc["repos"]
        if (not namespace or r["namespace"] == namespace)
        and (not name or r["name"] == name)
        and status in ("ALL", "NORMAL")
    ]
    chunk, fields = _page(call, repos, text_total=True)
    return {"Repositories": [_repo_view(doc, r, listed=True) for r in chunk], **fields}


def get_repository(call: Call) -> dict[str, Any]:
    _, doc = _instance(call)
    return _repo_view(doc, _repo(call, doc))


def list_repo_tag(call: Call) -> dict[str, Any]:
    _, doc = _instance(call)
    repo = _repo(call, doc)
    chunk, fields = _page(call, repo["tags"], text_total=True)
    return {"Images": [_image_view(t, listed=True) for t in chunk], **fields}


def get_repo_tag(call: Call) -> dict[str, Any]:
    _, doc = _instance(call)
    repo = _repo(call, doc)
    name = call.params.text("Tag")
    tag = next((t for t in repo["tags"] if t["tag"] == name), None)
    if tag is None:
        raise chosen_codes.CR_TAG_NOT_EXIST.error(f"The tag {name} does not exist.")
    return _image_view(tag, listed=False)


# -- registry login --------------------------------------------------------------------------------


def get_authorization_token(call: Call) -> dict[str, Any]:
    """A fresh temporary registry password, valid an hour (the metadata knows no
    `ExpiresInHours`) and never beyond the caller's STS token; the instance's own login password
    is never revealed."""
    scope, doc = _instance(call)
    now_ms = int(call.now * 1000)
    expires_ms = now_ms + 3_600_000
    key = call.tx.get(KEY_SCOPE, KEY_KIND, call.caller.access_key_id)
    if key is not None and key.get("expires_at") is not None:
        expires_ms = min(expires_ms, int(float(key["expires_at"]) * 1000))
    token = secrets.token_urlsafe(48)
    doc["temp_logins"] = [t for t in doc["temp_logins"] if t["expires_ms"] > now_ms]
    doc["temp_logins"].append(
        {"username": TEMP_USERNAME, "password": token, "expires_ms": expires_ms}
    )
    call.tx.put(scope, INSTANCE, doc["id"], doc)
    return {"TempUsername": TEMP_USERNAME, "AuthorizationToken": token, "ExpireTime": expires_ms}
