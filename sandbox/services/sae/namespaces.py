"""SAE namespaces: where an application runs (VPC, vSwitch, security group).

SAE requests carry no region: the real service takes it from the endpoint host, and answers for
that region only, list calls included (sandbox/regions.py says how the sandbox learns it).
"""

from __future__ import annotations

from typing import Any

from sandbox.call import Call
from sandbox.errors import ApiError
from sandbox.services.sae.documents import NAMESPACE, Namespace, as_namespace
from sandbox.store import Scope, Tx
from sandbox.world import World


def seed(tx: Tx, world: World) -> None:
    uids = {a.name: a.uid for a in world.accounts}
    for region_id, region in world.regions.items():
        for ns in region.sae_namespaces:
            namespace: Namespace = {
                "NamespaceId": ns.id,
                "NamespaceName": ns.name,
                "NameSpaceShortId": ns.id.partition(":")[2] or ns.id,
                "RegionId": region_id,
                "VpcId": ns.vpc,
                "VSwitchId": ns.vswitch,
                "SecurityGroupId": ns.security_group,
                "NamespaceDescription": "",
            }
            tx.put(Scope(uids[ns.account], region_id), NAMESPACE, ns.id, namespace)


def regions(call: Call) -> list[str]:
    """Only the region the request addressed (sandbox/regions.py)."""
    return [call.region()]


def default_namespace(region: str) -> Namespace:
    """The region's system-created namespace before its first app binds it to a VPC."""
    return {
        "NamespaceId": region,
        "NamespaceName": "Default",
        "NameSpaceShortId": region,
        "RegionId": region,
        "VpcId": "",
        "VSwitchId": "",
        "SecurityGroupId": "",
        "NamespaceDescription": "",
    }


def find_namespace(
    tx: Tx, account: str, namespace_id: str, world: World | None = None
) -> Namespace | None:
    """A namespace of the account, by its id (`<region>:<name>`, or the region for the default).

    Every region of `world` has a default namespace, whose id is the region id: stored once its
    first app has bound it to a VPC (or the world declares it), unbound (no VPC) until then.
    """
    region = namespace_id.partition(":")[0]
    found = tx.get(Scope(account, region), NAMESPACE, namespace_id)
    if found is None and world is not None and namespace_id in world.regions:
        return default_namespace(namespace_id)
    return None if found is None else as_namespace(found)


def bind_namespace(
    tx: Tx, account: str, namespace: Namespace, vpc: str, vswitch: str, group: str
) -> None:
    """Store the default namespace bound to the VPC of its first app (SAE never changes it)."""
    namespace["VpcId"], namespace["VSwitchId"], namespace["SecurityGroupId"] = vpc, vswitch, group
    tx.put(Scope(account, namespace["RegionId"]), NAMESPACE, namespace["NamespaceId"], namespace)


def namespace_or_404(call: Call) -> Namespace:
    """The caller's namespace named by `NamespaceId` or `NameSpaceShortId`."""
    namespace_id = call.params.text("NamespaceId")
    short_id = call.params.text("NameSpaceShortId")
    if not namespace_id and not short_id:
        raise ApiError(
            400, "InvalidParameter.NotEmpty", "You must specify the parameter NamespaceId."
        )
    found: Namespace | None = None
    if namespace_id:
        found = find_namespace(call.tx, call.caller.account, namespace_id)
        if found is not None and found["RegionId"] != call.region():
            found = None  # another region's endpoint serves it
    else:
        for region in regions(call):
            for doc in call.tx.all(call.scope(region), NAMESPACE):
                if doc["NameSpaceShortId"] == short_id:
                    found = as_namespace(doc)
    if found is None:
        raise ApiError(
            404, "InvalidNamespaceId.NotFound", "The specified NamespaceId does not exist."
        )
    return found


def describe_namespace_list(call: Call) -> dict[str, Any]:
    """The caller's namespaces; custom ones (`<region>:<name>`) only with `ContainCustom=true`.

    The SDK model documents `ContainCustom` as "whether to return custom namespaces" without a
    default (reference A.1, DescribeNamespaceList); Terraform always sends `ContainCustom=true`
    (terraform-provider-alicloud `alicloud/resource_alicloud_sae_namespace_test.go`,
    `testSweepSaeNamespace`). The stricter reading is taken: left out, it is false, and only the
    region's default namespace is listed.
    """
    custom = call.params.flag("ContainCustom", default=False)
    call.params.flag("HybridCloudExclude")
    items = [
        {
            **{k: doc[k] for k in ("NamespaceId", "NamespaceName", "NameSpaceShortId", "RegionId")},
            **{k: doc[k] for k in ("VpcId", "VSwitchId", "SecurityGroupId")},
            "Custom": doc["NamespaceId"] != doc["RegionId"],
            "Current": False,
            "HybridCloudEnable": False,
        }
        for region in regions(call)
        for doc in call.tx.all(call.scope(region), NAMESPACE)
        if custom or doc["NamespaceId"] == doc["RegionId"]
    ]
    return {"Data": items}


def describe_namespace(call: Call) -> dict[str, Any]:
    doc = namespace_or_404(call)
    data = {
        "NamespaceId": doc["NamespaceId"],
        "NamespaceName": doc["NamespaceName"],
        "NameSpaceShortId": doc["NameSpaceShortId"],
        "RegionId": doc["RegionId"],
        "NamespaceDescription": doc["NamespaceDescription"],
    }
    return {"Data": {**data, "EnableMicroRegistration": False}}
