"""Account B: the registry lets account A's SAE in over the network path the image URL picks.

Over the public domain, the Enterprise instance's internet endpoint must be on and its ACL must
admit the app's egress EIPs (an entry that contains one counts: 47.96.0.0/16 admits 47.96.10.20);
an SNAT entry may hold several EIPs and SAE's pulls leave from any of them, so each must be in.
An empty ACL on an enabled endpoint admits everyone; adding an entry would shut out everyone
else, so it is left alone.

Over the `-vpc` domain the app's VPC must have a RUNNING link to the instance's VPC endpoint, or be
CEN-connected (in any region) to a VPC that has one; the VPC endpoint has no CIDR list of its own.
Account B can link account A's VPC once A shares it with B (VPC sharing). Over CEN the `-vpc` name
resolves only where DNS says so (ACR writes PrivateZone records for linked VPCs only), so the plan
names that DNS step, which no API in our reach can check. A missing link or CEN connection is
BLOCKED with the fix; the run does not link VPCs itself.

Switching the endpoint is asynchronous: GetInstanceEndpoint says CREATING (or DELETING) before
RUNNING, and ACL entries must be written once it is RUNNING (Terraform's
`alicloud_cr_endpoint_acl_service` waits for RUNNING, and `alicloud_cr_endpoint_acl_policy` retries
SLB_SERVICE_ERROR). So every ACL write here waits for RUNNING, is read back, and is written again
until it shows (a write before RUNNING may be dropped without an error).

Teardown switches the endpoint off again if this tool switched it on, and removes exactly the
entries it added, but never empties the ACL of an endpoint that stays on (that would open it to
the whole Internet).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from alibabacloud_cr20181201 import models as cr_models
from alibabacloud_vpc20160428 import models as vpc_models

from crossdeploy.cloud import CloudError, call
from crossdeploy.ledger import Intent
from crossdeploy.permissions import ALL, Arns, Needs, Permission, grant
from crossdeploy.plan import BLOCKED, OK, SKIP, Change, PlanRow
from crossdeploy.spec import DeploySpec
from tasks import image, network
from tasks.step import Accounts, Applied, Inspection, Step

NAME = "whitelist"
ENDPOINT = "cr.internet-endpoint"
ENTRY = "cr.acl-entry"
MODULE = "Registry"
INTERNET = "internet"
ENABLED_BY_SERVICE = "added by ACR when the internet endpoint was enabled"
RUNNING = "RUNNING"
"""GetInstanceEndpoint's Status once a switch has settled (the others: CREATING, DELETING)."""
SLB_SERVICE_ERROR = "SLB_SERVICE_ERROR"
"""A documented 400 of the ACL calls, which Terraform's provider retries."""

logger = logging.getLogger("crossdeploy.tasks.whitelist")


@dataclass(frozen=True)
class WhitelistState:
    instance_id: str | None
    enable: bool
    """Switch the instance's internet endpoint on."""
    add: tuple[str, ...]
    """Entries (CIDR) to add to the internet ACL."""
    comment: str
    rows: tuple[PlanRow, ...]
    settling: str = ""
    """The internet endpoint's Status when it is on but not RUNNING yet (apply waits for it)."""
    dns_step: str = ""
    """Over CEN: the DNS step that makes the `-vpc` name resolve in the app's VPC, which the run
    cannot check (the diagnosis names it when everything else is in place)."""


@dataclass(frozen=True)
class EndpointWait:
    """How long the ACL writes wait for the internet endpoint, and how often they look."""

    timeout_seconds: float = 600.0
    """Terraform's create timeout of `alicloud_cr_endpoint_acl_policy` (10 minutes)."""
    initial_seconds: float = 0.5
    max_seconds: float = 5.0
    """Terraform polls GetInstanceEndpoint every 5 seconds while it waits for RUNNING."""


DEFAULT_WAIT = EndpointWait()


class EndpointNotReadyError(Exception):
    """The internet endpoint did not settle, or an ACL write did not show, within the wait."""


@dataclass(frozen=True)
class _Internet:
    enabled: bool
    entries: tuple[str, ...]
    status: str = RUNNING


def inspect_whitelist(
    creds_b: Any,
    spec: DeploySpec,
    *,
    instance_id: str | None,
    egress_ips: Sequence[str],
    vpc_id: str,
    cen_connected_vpcs: Collection[str] = (),
    app_cen_ids: Collection[str] = (),
) -> WhitelistState:
    """Decide what the registry must admit for the app to pull. Reads only.

    `instance_id` is `ImageState.instance_id`; `egress_ips` the EIPs the app's vSwitch reaches the
    Internet with (every IP of its SNAT entry; empty when it has none); `vpc_id` the app's VPC
    (in `spec.app.region`). CEN: VPCs in `cen_connected_vpcs` count as connected to the app's VPC,
    and so does a VPC of account B that is attached to one of `app_cen_ids` (the CEN instances of
    the app's VPC, as DescribeVpcAttribute in account A lists them; B's side is read here).
    """
    ref = spec.image.ref
    comment = f"sae-crossdeploy:{spec.app.name}"

    def done(
        *rows: PlanRow,
        enable: bool = False,
        add: tuple[str, ...] = (),
        settling: str = "",
        dns_step: str = "",
    ) -> WhitelistState:
        return WhitelistState(instance_id, enable, add, comment, rows, settling, dns_step)

    if spec.network.whitelist == "none":
        return done(
            PlanRow(
                NAME, "B", f"{instance_id or ref.host} whitelist", "not checked", "as it is", SKIP,
                "network.whitelist is none: the registry's whitelist is managed by hand.",
            )
        )  # fmt: skip
    if ref.edition == "personal":
        return done(PlanRow(NAME, "B", ref.host, "no whitelist (Personal Edition)", "-", OK))
    if not instance_id:
        return done(
            PlanRow(
                NAME, "B", f"{ref.host} whitelist", "not checked", "admits the app", BLOCKED,
                "The whitelist belongs to the image's ACR instance, which the image step could "
                "not find; fix the image row first.",
            )
        )  # fmt: skip
    cr = creds_b.get_client("cr")
    if ref.over_vpc:
        cen = _Cen(set(cen_connected_vpcs), set(app_cen_ids), creds_b, ref.region)
        row, dns_step = _vpc_row(creds_b, cr, spec, instance_id, vpc_id, cen)
        return done(row, dns_step=dns_step)
    row, enable, add, settling = _internet_plan(cr, spec, instance_id, tuple(egress_ips))
    return done(row, enable=enable, add=add, settling=settling)


def apply_whitelist(
    creds_b: Any, state: WhitelistState, wait: EndpointWait = DEFAULT_WAIT
) -> list[Change]:
    """Switch the internet endpoint on and add the entries, only as `state` says; return once the
    endpoint is RUNNING and every entry shows in its ACL."""
    if state.instance_id is None or not (state.enable or state.add or state.settling):
        return []
    cr = creds_b.get_client("cr")
    instance_id = state.instance_id
    changes: list[Change] = []
    # The inspection read the endpoint RUNNING, and nothing here switches it: no read needed.
    running = not (state.enable or state.settling)
    if state.enable:
        before = set(_read_internet(cr, instance_id).entries)
        request = cr_models.UpdateInstanceEndpointStatusRequest(
            instance_id=instance_id, endpoint_type=INTERNET, enable=True, module_name=MODULE
        )
        call("cr:UpdateInstanceEndpointStatus", cr.update_instance_endpoint_status, request)
        changes.append(Change("B", ENDPOINT, instance_id, "enabled"))
        # The service seeds the ACL of a freshly enabled endpoint; record it for teardown.
        changes += [
            Change("B", ENTRY, _entry_id(instance_id, entry), "added", ENABLED_BY_SERVICE)
            for entry in _running(cr, instance_id, wait).entries
            if entry not in before and entry not in state.add
        ]
    elif state.settling:
        _running(cr, instance_id, wait)
    for entry in state.add:
        request = cr_models.CreateInstanceEndpointAclPolicyRequest(
            instance_id=instance_id,
            endpoint_type=INTERNET,
            entry=entry,
            comment=state.comment,
            module_name=MODULE,
        )
        write = partial(
            call,
            "cr:CreateInstanceEndpointAclPolicy",
            cr.create_instance_endpoint_acl_policy,
            request,
        )
        _until_shown(cr, instance_id, entry, write, present=True, wait=wait, running=running)
        changes.append(Change("B", ENTRY, _entry_id(instance_id, entry), "added", state.comment))
    return changes


def remove_whitelist(
    creds_b: Any, changes: list[Change], wait: EndpointWait = DEFAULT_WAIT
) -> list[Change]:
    """Undo this step's changes (others in `changes` are ignored): switch off what was switched
    on first, then remove the added entries (once the switch has settled)."""
    cr = creds_b.get_client("cr")
    undone: list[Change] = []
    for change in changes:
        if change.resource_type == ENDPOINT and change.action == "enabled":
            request = cr_models.UpdateInstanceEndpointStatusRequest(
                instance_id=change.resource_id,
                endpoint_type=INTERNET,
                enable=False,
                module_name=MODULE,
            )
            if _read_internet(cr, change.resource_id).enabled:
                call("cr:UpdateInstanceEndpointStatus", cr.update_instance_endpoint_status, request)
                undone.append(Change("B", ENDPOINT, change.resource_id, "disabled"))
    added: dict[str, list[str]] = {}
    for change in changes:
        if change.resource_type == ENTRY and change.action == "added":
            instance_id, _, entry = change.resource_id.split(":", 2)
            added.setdefault(instance_id, []).append(entry)
    for instance_id, entries in added.items():
        undone += _remove_entries(cr, instance_id, entries, wait)
    return undone


# -- internet endpoint ---------------------------------------------------------------------------


def _internet_plan(
    cr: Any, spec: DeploySpec, instance_id: str, egress_ips: tuple[str, ...]
) -> tuple[PlanRow, bool, tuple[str, ...], str]:
    """The public path: the endpoint must be on and its ACL must admit every egress EIP.
    Returns the row, whether to switch the endpoint on, the entries to add, and the endpoint's
    Status when it is on but not RUNNING yet."""
    ref = spec.image.ref
    resource = f"{instance_id} internet ACL"
    if not egress_ips:
        return (
            PlanRow(
                NAME, "B", resource, "no egress IP", "admits the app's EIP", BLOCKED,
                f"The app's vSwitch has no way to the Internet (see the network row), so there "
                f"is no address to whitelist and SAE cannot reach {ref.host}. Fix the NAT "
                "gateway / SNAT entry, or pull over the VPC domain.",
            ),
            False,
            (),
            "",
        )  # fmt: skip
    internet = _read_internet(cr, instance_id)
    now = ", ".join(internet.entries) or "empty"
    settling = internet.status if internet.enabled and internet.status != RUNNING else ""
    if not internet.enabled:
        now = f"endpoint disabled; {now}"
    elif settling:
        now = f"endpoint {settling}; {now}"
    covering = {ip: [e for e in internet.entries if _covers(e, ip)] for ip in egress_ips}
    missing = [f"{ipaddress.IPv4Address(ip)}/32" for ip in egress_ips if not covering[ip]]
    admits = f"admits {', '.join(egress_ips)}"
    several = (
        f"The app's SNAT entry holds {len(egress_ips)} EIPs and SAE's pulls leave from any of "
        "them, so each must be admitted."
        if len(egress_ips) > 1
        else ""
    )
    if internet.enabled and not missing:
        inside = [
            f"{ip} is inside {found[0]}."
            for ip, found in covering.items()
            if f"{ip}/32" not in found
        ]
        note = " ".join(inside + ([_settling_note(instance_id, settling)] if settling else []))
        return PlanRow(NAME, "B", resource, now, admits, OK, note), False, (), settling
    if internet.enabled and not internet.entries:
        return (
            PlanRow(
                NAME, "B", resource, now, admits, OK,
                "The ACL is empty, so the endpoint is open to the whole Internet and admits "
                f"{', '.join(egress_ips)}; adding an entry would shut everyone else out, so none "
                "is added.",
            ),
            False,
            (),
            settling,
        )  # fmt: skip
    wanted = ", ".join(f"+ {ip}/32" for ip in egress_ips)
    if spec.network.whitelist == "vpc-cidr":
        return (
            PlanRow(
                NAME, "B", resource, now, wanted, BLOCKED,
                f"{ref.host} is the public domain, where the ACL must admit the app's EIP "
                f"{', '.join(egress_ips)}, but network.whitelist is vpc-cidr. Set "
                f"network.whitelist: auto (or eip) to add {', '.join(missing)}, add it by hand, "
                f"or pull over the VPC domain. {several}".strip(),
            ),
            False,
            (),
            "",
        )  # fmt: skip
    enable = not internet.enabled
    add = tuple(missing)
    action = " + ".join((["enable"] if enable else []) + [f"add {e}" for e in add])
    reason = (
        f"The internet endpoint of {instance_id} is off; it is switched on ({ref.host})."
        if enable
        else ""
    )
    reason = f"{reason} {several}".strip() if add else reason
    return PlanRow(NAME, "B", resource, now, wanted, action, reason), enable, add, settling


def _settling_note(instance_id: str, status: str) -> str:
    return (
        f"The internet endpoint of {instance_id} is {status}, not RUNNING yet; the run waits "
        "for RUNNING before the app pulls."
    )


def _read_internet(cr: Any, instance_id: str) -> _Internet:
    request = cr_models.GetInstanceEndpointRequest(
        instance_id=instance_id, endpoint_type=INTERNET, module_name=MODULE
    )
    body = call("cr:GetInstanceEndpoint", cr.get_instance_endpoint, request).body
    entries = tuple(str(a.entry) for a in body.acl_entries or [] if a.entry)
    return _Internet(bool(body.enable), entries, str(body.status or RUNNING))


class _Patience:
    """One wait of at most `wait.timeout_seconds`, looking again after growing pauses."""

    def __init__(self, wait: EndpointWait) -> None:
        self.deadline = time.monotonic() + wait.timeout_seconds
        self.pause = wait.initial_seconds
        self.max_pause = wait.max_seconds

    def again(self, what: str) -> None:
        """Pause before the next look; EndpointNotReadyError once the wait is over."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise EndpointNotReadyError(what)
        time.sleep(min(self.pause, left))
        self.pause = min(self.pause * 2, self.max_pause)


def _running(
    cr: Any, instance_id: str, wait: EndpointWait, patience: _Patience | None = None
) -> _Internet:
    """The internet endpoint once GetInstanceEndpoint says RUNNING."""
    patience = patience or _Patience(wait)
    while (internet := _read_internet(cr, instance_id)).status != RUNNING:
        patience.again(
            f"the internet endpoint of {instance_id} stayed {internet.status} for "
            f"{wait.timeout_seconds:.0f}s; it must be RUNNING before its ACL can change"
        )
    return internet


def _until_shown(
    cr: Any,
    instance_id: str,
    entry: str,
    write: Callable[[], object],
    *,
    present: bool,
    wait: EndpointWait,
    running: bool = False,
) -> None:
    """Write one ACL change (add: `present`, or remove) once the endpoint is RUNNING, and again
    until reading the ACL back shows it: a write before RUNNING may be dropped silently, and
    SLB_SERVICE_ERROR is retried as Terraform's provider does. `running`: the inspection just
    read the endpoint RUNNING and nothing switched it since, so the first write needs neither
    the wait nor the read-back (no read repeated for the same answer)."""
    patience = _Patience(wait)
    what = "added to" if present else "removed from"
    while True:
        if not running:
            _running(cr, instance_id, wait, patience)
        try:
            write()
        except CloudError as exc:
            if exc.code != SLB_SERVICE_ERROR:
                raise
            logger.warning("%s; writing %s again", exc, entry)
            running = False  # look again before the next write
        else:
            if running or (entry in _read_internet(cr, instance_id).entries) == present:
                return
        patience.again(
            f"{entry} was not {what} the internet ACL of {instance_id} within "
            f"{wait.timeout_seconds:.0f}s"
        )


def _entry_id(instance_id: str, entry: str) -> str:
    """Terraform's id for an ACL entry: `<instance>:<endpoint type>:<entry>`."""
    return f"{instance_id}:{INTERNET}:{entry}"


def _remove_entries(
    cr: Any, instance_id: str, entries: list[str], wait: EndpointWait
) -> list[Change]:
    internet = _read_internet(cr, instance_id)
    present = [e for e in dict.fromkeys(entries) if e in internet.entries]
    if internet.enabled and present and set(internet.entries) <= set(present):
        logger.warning(
            "kept %s on %s: removing them would empty the ACL of an enabled internet endpoint, "
            "which opens it to the whole Internet",
            ", ".join(present),
            instance_id,
        )
        return []
    undone = []
    for entry in present:
        request = cr_models.DeleteInstanceEndpointAclPolicyRequest(
            instance_id=instance_id, endpoint_type=INTERNET, entry=entry, module_name=MODULE
        )
        write = partial(
            call,
            "cr:DeleteInstanceEndpointAclPolicy",
            cr.delete_instance_endpoint_acl_policy,
            request,
        )
        _until_shown(cr, instance_id, entry, write, present=False, wait=wait)
        undone.append(Change("B", ENTRY, _entry_id(instance_id, entry), "removed"))
    return undone


# -- VPC endpoint --------------------------------------------------------------------------------


def _vpc_row(
    creds_b: Any, cr: Any, spec: DeploySpec, instance_id: str, vpc_id: str, cen: _Cen
) -> tuple[PlanRow, str]:
    """The `-vpc` path: a RUNNING link of the app's VPC, or CEN to a VPC with one (then with the
    DNS step, returned second). ACR documents both: access over VPC
    (https://www.alibabacloud.com/help/en/acr/user-guide/configure-access-over-vpcs) with another
    account's VPC shared with B (https://www.alibabacloud.com/help/en/acr/user-guide/cross-account-access-to-container-registry-service-enterprise-edition-instances-by-using-vpc-sharing-service),
    and across regions over CEN (https://alibabacloud.com/help/en/acr/use-cases/access-enterprise-edition-instances-across-regions-or-from-idc)."""
    ref = spec.image.ref
    resource = f"{instance_id} VPC endpoint"
    wanted = f"reachable from {vpc_id}"
    note = (
        " (network.whitelist: eip does not apply: the image is pulled over the VPC domain.)"
        if spec.network.whitelist == "eip"
        else ""
    )
    request = cr_models.GetInstanceVpcEndpointRequest(instance_id=instance_id, module_name=MODULE)
    body = call("cr:GetInstanceVpcEndpoint", cr.get_instance_vpc_endpoint, request).body
    links = {str(v.vpc_id): v for v in body.linked_vpcs or []}
    running = [v for v, link in links.items() if link.status == RUNNING]
    if vpc_id in links:
        status = str(links[vpc_id].status)
        if status == RUNNING:
            return PlanRow(NAME, "B", resource, f"{vpc_id} linked", wanted, OK, note.strip()), ""
        return (
            PlanRow(
                NAME, "B", resource, f"{vpc_id} linked, {status}", wanted, BLOCKED,
                f"A linked VPC reaches {ref.host} (and resolves it) only once the link's Status "
                f"is RUNNING; the link of {vpc_id} to {instance_id} is {status}. Wait until it is "
                f"RUNNING (GetInstanceVpcEndpoint, or the instance's Access Control > VPC page in "
                f"the ACR console), then deploy again.{note}",
            ),
            "",
        )  # fmt: skip
    peers = [v for v in running if cen.connects(v)]
    if peers:
        peer = peers[0]
        dns_step = (
            f"{ref.host} resolves only in VPCs linked to {instance_id} (ACR writes its "
            f"PrivateZone records for those), and {vpc_id} reaches the endpoint over CEN through "
            f"{peer}, so {vpc_id}'s DNS must point the name there: in PrivateZone, associate "
            f"{vpc_id} with a zone {ref.host} whose A record is {links[peer].ip} (the endpoint's "
            f"address in {peer}). The run cannot check PrivateZone."
        )
        row = PlanRow(
            NAME, "B", resource, f"{vpc_id} via CEN to {peer}", wanted, OK, dns_step + note
        )  # fmt: skip
        return row, dns_step
    linked = ", ".join(f"{v} ({links[v].status})" for v in links) or "none"
    via_cen = (
        f"connect {vpc_id} by CEN to a VPC in {ref.region} with a RUNNING link to {instance_id} "
        f"(linked: {linked}) and point {ref.host} at the endpoint in {vpc_id}'s PrivateZone"
    )
    public = f"pull over the public domain {ref.domains()[0]}"
    if ref.region != spec.app.region:
        return (
            PlanRow(
                NAME, "B", resource, f"{vpc_id} not CEN-connected to a linked VPC", wanted,
                BLOCKED,
                f"{ref.host} is in {ref.region} and the app's VPC {vpc_id} in "
                f"{spec.app.region}; a VPC endpoint links only VPCs of its own region, so "
                f"{vpc_id} reaches it only over CEN. Fix: {via_cen}; or {public}.{note}",
            ),
            "",
        )  # fmt: skip
    shared = _shared_vswitches(creds_b, spec.app.region, vpc_id)
    link = (
        f"in account B link {vpc_id} to the VPC endpoint of {instance_id} through {shared[0]} "
        f"(ACR console: instance > Access Control > VPC > Add VPC; or "
        f"CreateInstanceVpcEndpointLinkedVpc with VpcId {vpc_id}, VswitchId {shared[0]}) and "
        f"wait until its Status is RUNNING"
        if shared
        else f"share a vSwitch of {vpc_id} with account B (VPC sharing: a resource share in "
        f"account A's Resource Management), then in account B link {vpc_id} to the VPC endpoint "
        f"of {instance_id} through it and wait until its Status is RUNNING"
    )
    return (
        PlanRow(
            NAME, "B", resource, f"{vpc_id} neither linked nor CEN-connected", wanted, BLOCKED,
            f"{ref.host} is reachable only from VPCs with a RUNNING link to the VPC endpoint of "
            f"{instance_id} (linked: {linked}) or connected to one by CEN. "
            f"{vpc_id} belongs to account A"
            + (f" and is shared with account B ({', '.join(shared)})" if shared else "")
            + f". Fix: {link} (account A needs PrivateZone activated and ACR allowed to use it, "
            f"for the name to resolve); or {via_cen}; or {public}. The run does not link VPCs "
            f"itself.{note}",
        ),
        "",
    )  # fmt: skip


def _shared_vswitches(creds_b: Any, region: str, vpc_id: str) -> list[str]:
    """The vSwitches of account A's VPC that account B sees: those A shares with B (a participant
    sees them with ShareType `Shared`, per DescribeVSwitches)."""
    vpc = creds_b.get_client("vpc")
    request = vpc_models.DescribeVSwitchesRequest(region_id=region, vpc_id=vpc_id, page_size=50)
    try:
        body = call("vpc:DescribeVSwitches", vpc.describe_vswitches, request).body
    except CloudError as exc:
        if exc.code == "InvalidVpcId.NotFound":
            return []
        raise
    found = body.v_switches.v_switch if body.v_switches else None
    return [str(v.v_switch_id) for v in found or []]


@dataclass(frozen=True)
class _Cen:
    """Which VPCs CEN connects to the app's VPC: named ones, or ones sharing a CEN instance."""

    vpcs: set[str]
    cen_ids: set[str]
    creds_b: Any
    region: str

    def connects(self, vpc_id: str) -> bool:
        if vpc_id in self.vpcs:
            return True
        if not self.cen_ids:
            return False
        vpc = self.creds_b.get_client("vpc")
        request = vpc_models.DescribeVpcAttributeRequest(region_id=self.region, vpc_id=vpc_id)
        try:
            body = call("vpc:DescribeVpcAttribute", vpc.describe_vpc_attribute, request).body
        except CloudError as exc:
            # The documented codes for a VPC that is not there (Terraform reads both so, too).
            if exc.code in ("InvalidVpcID.NotFound", "Forbidden.VpcNotFound"):
                return False
            raise
        cens = body.associated_cens.associated_cen if body.associated_cens else None
        return any(str(c.cen_id) in self.cen_ids for c in cens or [])


def _covers(cidr: str, inner: str) -> bool:
    """Whether `cidr` contains `inner`, an address or a CIDR block."""
    try:
        return ipaddress.IPv4Network(inner, strict=False).subnet_of(
            ipaddress.IPv4Network(cidr, strict=False)
        )
    except ValueError:
        return False


# -- the step ------------------------------------------------------------------------------------


class WhitelistStep(Step[WhitelistState, Applied]):
    """Account B's registry admits account A's SAE on the image's network path."""

    name = task_name = NAME
    account = "B"
    needs = (image.NAME, network.STEP.name)
    reverses = frozenset({(ENDPOINT, "enabled"), (ENTRY, "added")})

    def permissions(self, spec: DeploySpec, arns: Arns) -> Needs:
        """Personal Edition has no whitelist. Over the VPC domain the links are only read (the
        run links no VPC; B sees A's VPC when A shares it, and CEN peers are B's VPCs in the
        image's region); over the Internet the endpoint is switched on and its ACL written, and
        teardown undoes both. With `whitelist: none` only a failed deploy's diagnosis reads it
        (it is still on the pull path)."""
        ref = spec.image.ref
        if ref.edition == "personal":
            return Needs()
        instance = arns.cr_instance(spec.image.instance_id)
        if ref.over_vpc:
            reads = (
                grant(instance, "cr:GetInstanceVpcEndpoint")
                + grant(ALL, "vpc:DescribeVSwitches")
                + grant(arns.vpc("vpc"), "vpc:DescribeVpcAttribute")
            )
            writes: tuple[Permission, ...] = ()
            removes: tuple[Permission, ...] = ()
        else:
            endpoint = ("cr:GetInstanceEndpoint", "cr:UpdateInstanceEndpointStatus")
            reads = grant(instance, "cr:GetInstanceEndpoint")
            writes = grant(instance, *endpoint, "cr:CreateInstanceEndpointAclPolicy")
            removes = grant(instance, *endpoint, "cr:DeleteInstanceEndpointAclPolicy")
        if spec.network.whitelist == "none":
            return Needs(writes=reads)
        return Needs(reads, writes, removes)

    def inspect(self, accounts: Accounts, spec: DeploySpec, found: Inspection) -> WhitelistState:
        net = found.of(network.STEP)
        return inspect_whitelist(
            accounts.registry,
            spec,
            instance_id=found.of(image.STEP).instance_id,
            egress_ips=net.egress_ips,
            vpc_id=net.vpc_id,
            app_cen_ids=net.cen_ids,
        )

    def apply(self, accounts: Accounts, state: WhitelistState) -> Applied:
        return Applied(tuple(apply_whitelist(accounts.registry, state)))

    def remaining(self, state: WhitelistState, before: Sequence[WhitelistState]) -> WhitelistState:
        """Namespaces sharing an egress need its entry once, and the endpoint is switched on
        once."""
        added = {entry for earlier in before for entry in earlier.add}
        enabled = any(earlier.enable for earlier in before)
        return replace(
            state,
            enable=state.enable and not enabled,
            add=tuple(entry for entry in state.add if entry not in added),
        )

    def remove(self, accounts: Accounts, spec: DeploySpec, changes: list[Change]) -> list[Change]:
        return remove_whitelist(accounts.registry, changes)

    def intents(self, state: WhitelistState) -> list[Intent]:
        """The switch and the entries; their remove touches only what is there, so an intent
        needs no confirming. Not covered: the entry ACR itself adds when an endpoint is switched
        on from an empty ACL (its address is only known after the write; the endpoint is switched
        off again, though)."""
        if state.instance_id is None:
            return []
        out = []
        if state.enable:
            out.append(Intent(Change("B", ENDPOINT, state.instance_id, "enabled")))
        for entry in state.add:
            entry_id = _entry_id(state.instance_id, entry)
            out.append(Intent(Change("B", ENTRY, entry_id, "added", state.comment)))
        return out


STEP = WhitelistStep()
