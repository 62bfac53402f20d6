"""Account A's network: where the namespace's instances run and how they reach the registry.

Reads only. SAE pulls the image from inside the namespace's vSwitch, so a public registry domain
needs an internet egress: an SNAT entry covering that vSwitch on an internet NAT gateway of the
VPC. Its IP (the EIP) is what account B's registry whitelist must allow. Over the `-vpc` domain no
egress is needed; whether the VPC can reach the registry (a link, or CEN to a linked VPC) is the
whitelist step's concern, which is why the VPC's CEN attachments are collected here too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from alibabacloud_sae20190506 import models as sae_models
from alibabacloud_vpc20160428 import models as vpc_models

from blocks import AlibabaCloudCredentials
from crossdeploy.cloud import CloudError, call
from crossdeploy.permissions import ALL, Arns, Needs, grant
from crossdeploy.plan import BLOCKED, OK, PlanRow
from crossdeploy.spec import DeploySpec
from crossdeploy.together import together
from tasks.step import Accounts, Applied, Inspection, Step

_PAGE_SIZE = 50
"""The VPC API's largest page."""


@dataclass(frozen=True)
class NetworkState:
    namespace_id: str
    region: str
    vpc_id: str
    vpc_cidr: str
    vswitch_id: str
    vswitch_cidr: str
    security_group_id: str
    egress_ip: str | None
    """The SNAT IP SAE's pulls leave from; None without an internet egress."""
    nat_gateway_id: str | None
    cen_ids: tuple[str, ...]
    egress_ips: tuple[str, ...] = ()
    """Every IP of the covering SNAT entry (an entry may hold several); egress_ip is the first."""
    rows: tuple[PlanRow, ...] = ()

    @property
    def blocked(self) -> bool:
        return any(row.blocked for row in self.rows)


@dataclass(frozen=True)
class SnatEntry:
    nat_gateway_id: str
    source_vswitch_id: str
    source_cidr: str
    ips: tuple[str, ...]


def covering_entry(
    entries: list[SnatEntry], vswitch_id: str, vswitch_cidr: str
) -> SnatEntry | None:
    """The SNAT entry that carries the vSwitch's traffic: the most specific one wins.

    An entry for the vSwitch itself is as specific as its CIDR and wins a tie with a CIDR entry of
    the same prefix; wider CIDR entries (a whole VPC) lose to narrower ones.
    """
    own = ipaddress.ip_network(vswitch_cidr, strict=False)
    best: tuple[int, int] | None = None
    chosen: SnatEntry | None = None
    for entry in entries:
        if not entry.ips:
            continue
        if entry.source_vswitch_id == vswitch_id:
            rank = (own.prefixlen, 1)
        elif entry.source_cidr and _contains(entry.source_cidr, own):
            rank = (ipaddress.ip_network(entry.source_cidr, strict=False).prefixlen, 0)
        else:
            continue
        if best is None or rank > best:
            best, chosen = rank, entry
    return chosen


def _contains(cidr: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        outer = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False
    return outer.version == network.version and network.subnet_of(outer)  # type: ignore[arg-type]


def _pages(fetch: Callable[[int], Any], items: Callable[[Any], list[Any] | None]) -> Iterator[Any]:
    """Every item of a PageNumber/TotalCount listing (VPC API style)."""
    number = 1
    seen = 0
    while True:
        body = fetch(number)
        chunk = items(body) or []
        yield from chunk
        seen += len(chunk)
        if not chunk or seen >= int(body.total_count or 0):
            return
        number += 1


def inspect_network(
    creds_a: AlibabaCloudCredentials, spec: DeploySpec, known: NetworkState | None = None
) -> NetworkState:
    """Find the namespace's VPC, vSwitch and internet egress; BLOCKED when a pull cannot work.

    `app.vswitch_id` picks another vSwitch of the namespace's VPC. The region's default
    namespace is bound to a VPC by its first app: until then `app.vpc_id` and `app.vswitch_id`
    say which network that will be. `known`, a state this run found before (the failure
    diagnosis re-checks): the app's VPC and vSwitch are fixed once it exists, so only the egress
    (NAT gateways and their SNAT entries, which anyone can change) is read again.
    """
    if known is not None and not known.blocked:
        vpc = creds_a.get_client("vpc")
        found = _egress_of(vpc, known.region, known.vpc_id)
        return _with_egress(replace(known, rows=()), spec, found)
    placement = _placement(spec, _region_namespaces(creds_a, spec.app.region))
    if isinstance(placement, NetworkState):
        return placement
    region, vpc_id = spec.app.region, placement.vpc_id
    vpc = creds_a.get_client("vpc")
    # None needs another's answer: read at once (a wrong vSwitch wastes the egress reads only)
    vswitch_read, attributes_read, egress_read = together(
        lambda: _vswitch_in_vpc(vpc, spec, placement),
        lambda: _vpc_attributes(vpc, region, vpc_id),
        lambda: _egress_of(vpc, region, vpc_id),
    )
    vswitch = vswitch_read.result()
    if isinstance(vswitch, NetworkState):
        return vswitch
    base = _base(spec, placement, vswitch, attributes_read.result())
    return _with_egress(base, spec, egress_read.result())


@dataclass(frozen=True)
class _Placement:
    """Where the app's instances run: the namespace's network, or the one the spec names."""

    vpc_id: str
    vswitch_id: str
    security_group_id: str


def _region_namespaces(creds_a: AlibabaCloudCredentials, region: str) -> list[Any]:
    """Account A's SAE namespaces in the region (a listing without a region counts as in it)."""
    sae = creds_a.get_client("sae")
    listing = call(
        "sae:DescribeNamespaceList",
        sae.describe_namespace_list,
        # Custom namespaces are listed only when asked for; the default is not documented.
        sae_models.DescribeNamespaceListRequest(contain_custom=True),
    ).body.data
    return [n for n in listing or [] if not n.region_id or n.region_id == region]


def _placement(spec: DeploySpec, namespaces: list[Any]) -> _Placement | NetworkState:
    """The namespace's VPC and vSwitch (`app.vswitch_id` may pick another); BLOCKED without."""
    app, region, namespace_id = spec.app, spec.app.region, spec.app.namespace_id
    namespace = next((n for n in namespaces if n.namespace_id == namespace_id), None)
    if namespace is None and not app.default_namespace:
        known = ", ".join(sorted(str(n.namespace_id) for n in namespaces)) or "none"
        return _unresolved(
            spec,
            resource=namespace_id,
            now="missing",
            reason=(
                f"SAE namespace {namespace_id} does not exist in account A in {region}, so there "
                "is nowhere to run the app. Create it in the SAE console (with a VPC and "
                f"vSwitch), or set app.namespace to an existing one ({known})."
            ),
        )
    bound = str(namespace.vpc_id or "") if namespace is not None else ""
    if not bound or namespace is None or not namespace.v_switch_id:
        return _unbound_placement(spec)
    if app.vpc_id and app.vpc_id != bound:
        return _unresolved(
            spec,
            resource=namespace_id,
            now=f"bound to {bound}",
            reason=(
                f"SAE namespace {namespace_id} is bound to {bound}, and a namespace keeps "
                f"its VPC; app.vpc_id says {app.vpc_id}. Remove app.vpc_id, set it to "
                f"{bound}, or use another namespace."
            ),
        )
    return _Placement(
        vpc_id=bound,
        vswitch_id=app.vswitch_id or str(namespace.v_switch_id),
        security_group_id=app.security_group_id or str(namespace.security_group_id or ""),
    )


def _unbound_placement(spec: DeploySpec) -> _Placement | NetworkState:
    """A namespace with no VPC yet: the network the spec names, else BLOCKED."""
    app, namespace_id = spec.app, spec.app.namespace_id
    if app.vpc_id and app.vswitch_id:
        return _Placement(
            vpc_id=app.vpc_id,
            vswitch_id=app.vswitch_id,
            security_group_id=app.security_group_id or "",
        )
    if app.default_namespace:
        return _unresolved(
            spec,
            resource=namespace_id,
            now="default namespace, no VPC yet",
            reason=(
                f"The default namespace {namespace_id} is bound to a VPC when its first app "
                "is created, and none has been. Set app.vpc_id and app.vswitch_id (and "
                "app.security_group_id) to the network the app should run in."
            ),
        )
    return _unresolved(
        spec,
        resource=namespace_id,
        now="no VPC bound",
        reason=(
            f"SAE namespace {namespace_id} has no VPC and vSwitch yet, so its egress "
            "cannot be checked. Bind one in the SAE console, set app.vpc_id and "
            "app.vswitch_id, or use a namespace that has one."
        ),
    )


def _vswitch_in_vpc(vpc: Any, spec: DeploySpec, placement: _Placement) -> Any:
    """The vSwitch's attributes, or a BLOCKED state when it is missing or in another VPC."""
    region, vpc_id, vswitch_id = spec.app.region, placement.vpc_id, placement.vswitch_id
    try:
        vswitch = call(
            "vpc:DescribeVSwitchAttributes",
            vpc.describe_vswitch_attributes,
            vpc_models.DescribeVSwitchAttributesRequest(region_id=region, v_switch_id=vswitch_id),
        ).body
    except CloudError as exc:
        if exc.code != "InvalidVSwitchId.NotFound":
            raise
        vswitch = None
    if vswitch is None or str(vswitch.vpc_id or "") != vpc_id:
        return _unresolved(
            spec,
            resource=vswitch_id,
            now="not found" if vswitch is None else f"in {vswitch.vpc_id}",
            reason=(
                f"vSwitch {vswitch_id} is not a vSwitch of {vpc_id} in account A in {region}; "
                "SAE runs instances only in a vSwitch of the namespace's VPC. Set "
                "app.vswitch_id to one of its vSwitches."
            ),
        )
    return vswitch


def _vpc_attributes(vpc: Any, region: str, vpc_id: str) -> Any:
    return call(
        "vpc:DescribeVpcAttribute",
        vpc.describe_vpc_attribute,
        vpc_models.DescribeVpcAttributeRequest(region_id=region, vpc_id=vpc_id),
    ).body


def _base(spec: DeploySpec, placement: _Placement, vswitch: Any, attributes: Any) -> NetworkState:
    """The state with the VPC's CIDR and CEN links, its egress not yet known."""
    cens = attributes.associated_cens.associated_cen if attributes.associated_cens else None
    return NetworkState(
        namespace_id=spec.app.namespace_id,
        region=spec.app.region,
        vpc_id=placement.vpc_id,
        vpc_cidr=str(attributes.cidr_block or ""),
        vswitch_id=placement.vswitch_id,
        vswitch_cidr=str(vswitch.cidr_block or ""),
        security_group_id=placement.security_group_id,
        egress_ip=None,
        nat_gateway_id=None,
        cen_ids=tuple(str(c.cen_id) for c in cens or []),
    )


def _egress_of(vpc: Any, region: str, vpc_id: str) -> tuple[list[str], list[SnatEntry]]:
    """The VPC's internet NAT gateways and their SNAT entries."""
    nat_ids = _internet_nat_gateways(vpc, region, vpc_id)
    return nat_ids, [entry for nat_id in nat_ids for entry in _snat_entries(vpc, region, nat_id)]


def _with_egress(
    base: NetworkState, spec: DeploySpec, egress: tuple[list[str], list[SnatEntry]]
) -> NetworkState:
    """`base` (VPC and vSwitch known) with the SNAT entry that covers the vSwitch, and its row."""
    nat_ids, entries = egress
    covering = covering_entry(entries, base.vswitch_id, base.vswitch_cidr)
    found = replace(
        base,
        egress_ip=covering.ips[0] if covering else None,
        nat_gateway_id=covering.nat_gateway_id if covering else None,
        egress_ips=covering.ips if covering else (),
    )
    return _with_row(found, spec, nat_ids)


# -- internals -------------------------------------------------------------------------------------


def _internet_nat_gateways(vpc: Any, region: str, vpc_id: str) -> list[str]:
    def fetch(number: int) -> Any:
        request = vpc_models.DescribeNatGatewaysRequest(
            region_id=region,
            vpc_id=vpc_id,
            network_type="internet",
            page_number=number,
            page_size=_PAGE_SIZE,
        )
        return call("vpc:DescribeNatGateways", vpc.describe_nat_gateways, request).body

    gateways = _pages(
        fetch, lambda body: body.nat_gateways.nat_gateway if body.nat_gateways else []
    )
    return [str(g.nat_gateway_id) for g in gateways if g.status != "Deleting"]


def _snat_entries(vpc: Any, region: str, nat_id: str) -> list[SnatEntry]:
    def fetch(number: int) -> Any:
        request = vpc_models.DescribeSnatTableEntriesRequest(
            region_id=region, nat_gateway_id=nat_id, page_number=number, page_size=_PAGE_SIZE
        )
        return call("vpc:DescribeSnatTableEntries", vpc.describe_snat_table_entries, request).body

    def items(body: Any) -> list[Any] | None:
        return body.snat_table_entries.snat_table_entry if body.snat_table_entries else []

    return [
        SnatEntry(
            nat_gateway_id=nat_id,
            source_vswitch_id=str(e.source_vswitch_id or ""),
            source_cidr=str(e.source_cidr or ""),
            ips=tuple(ip.strip() for ip in str(e.snat_ip or "").split(",") if ip.strip()),
        )
        for e in _pages(fetch, items)
        if e.status != "Deleting"
    ]


def _unresolved(spec: DeploySpec, *, resource: str, now: str, reason: str) -> NetworkState:
    row = PlanRow("network", "A", resource, now, "VPC and vSwitch", BLOCKED, reason)
    return NetworkState(
        namespace_id=spec.app.namespace_id,
        region=spec.app.region,
        vpc_id="",
        vpc_cidr="",
        vswitch_id="",
        vswitch_cidr="",
        security_group_id="",
        egress_ip=None,
        nat_gateway_id=None,
        cen_ids=(),
        rows=(row,),
    )


def _with_row(state: NetworkState, spec: DeploySpec, nat_ids: list[str]) -> NetworkState:
    ref = spec.image.ref
    vpc_domain = ref.domains()[1]
    vsw = state.vswitch_id
    if state.egress_ip:
        row = PlanRow(
            "network",
            "A",
            f"{vsw} → {state.nat_gateway_id} → {', '.join(state.egress_ips)}",
            "egress via SNAT",
            "VPC domain" if ref.over_vpc else "egress",
            OK,
        )
    elif ref.over_vpc:
        row = PlanRow(
            "network",
            "A",
            f"{vsw} → {state.vpc_id}",
            "no internet egress",
            "VPC domain",
            OK,
            f"{ref.host} is reached inside the VPC, so no internet egress is needed.",
        )
    else:
        if nat_ids:
            now = "no SNAT entry on any NAT"
            fix = f"Add an SNAT entry for {vsw} on {', '.join(nat_ids)}"
        else:
            now = f"no internet NAT gateway in {state.vpc_id}"
            fix = f"Add an internet NAT gateway to {state.vpc_id} with an SNAT entry for {vsw}"
        row = PlanRow(
            "network",
            "A",
            vsw,
            now,
            "egress",
            BLOCKED,
            f"{vsw} ({state.vswitch_cidr}) has no way to the internet, so SAE cannot reach "
            f"{ref.host}. {fix}, use a namespace whose vSwitch has one, or pull over the VPC "
            f"domain ({vpc_domain}).",
        )
    return replace(state, rows=(row,))


# -- the step ------------------------------------------------------------------------------------


class NetworkStep(Step[NetworkState, Applied]):
    """Reads only: the network is account A's to design; the run only checks it."""

    name = task_name = "network"
    account = "A"
    writes = False

    def permissions(self, spec: DeploySpec, arns: Arns) -> Needs:
        return Needs(
            reads=grant(ALL, "sae:DescribeNamespaceList", "vpc:DescribeNatGateways")
            + grant(ALL, "vpc:DescribeSnatTableEntries")
            + grant(arns.vpc("vswitch"), "vpc:DescribeVSwitchAttributes")
            + grant(arns.vpc("vpc"), "vpc:DescribeVpcAttribute")
        )

    def inspect(self, accounts: Accounts, spec: DeploySpec, found: Inspection) -> NetworkState:
        return inspect_network(accounts.app, spec, found.before(self))


STEP = NetworkStep()
