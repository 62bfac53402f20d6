"""World files: the bundled demo is valid per the contract, and broken references are refused."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from sandbox.world import World, load_world
from tests.support.worlds import demo_world_data as demo_data


def test_bundled_demo_world_matches_the_contract() -> None:
    world = load_world()
    assert [a.name for a in world.accounts] == ["app", "registry"]
    hangzhou = world.regions["cn-hangzhou"]
    assert hangzhou.sae_namespaces[0].id == "cn-hangzhou:demo"
    enterprise = [i for i in hangzhou.acr_instances if i.edition == "enterprise"]
    personal = [i for i in hangzhou.acr_instances if i.edition == "personal"]
    assert enterprise[0].id == "cri-demo" and personal
    assert enterprise[0].repos["shop/web"].tags == {"1.0": "sha256:aaaa", "1.1": "sha256:bbbb"}


def _break(path: str, value: Any) -> dict[str, Any]:
    data = demo_data()
    target: Any = data
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last = keys[-1]
    target[int(last) if last.isdigit() else last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("accounts.1.uid", "1111111111111111", "duplicate account uid"),
        ("accounts.0.uid", "123", "uid"),
        ("regions.cn-hangzhou.vpcs.0.account", "nobody", "unknown account"),
        ("regions.cn-hangzhou.vpcs.0.vswitches.0.cidr", "10.0.0.0/24", "outside the VPC CIDR"),
        ("regions.cn-hangzhou.vpcs.0.nat_gateways.0.snat.0.ip", "1.2.3.4", "is not an EIP"),
        (
            "regions.cn-hangzhou.vpcs.0.nat_gateways.0.snat.0.ip",
            "47.96.10.20,1.2.3.4",
            "SNAT ip 1.2.3.4 is not an EIP",
        ),
        (
            "regions.cn-hangzhou.vpcs.0.nat_gateways.0.snat.0.ip",
            "47.96.10.20,47.96.10.20",
            "names an EIP twice",
        ),
        ("regions.cn-hangzhou.vpcs.0.nat_gateways.0.snat.0.ip", "47.96.10.20,", "cannot be empty"),
        ("regions.cn-hangzhou.sae_namespaces.0.vswitch", "vsw-reg-h", "names vswitch"),
        ("regions.cn-hangzhou.sae_namespaces.0.vpc", "vpc-reg", "not of its account"),
        ("regions.cn-hangzhou.sae_namespaces.0.id", "cn-shanghai:demo", "not of this region"),
        ("regions.cn-hangzhou.cen", [["vpc-app", "vpc-nowhere"]], "unknown vpc"),
        ("regions.cn-hangzhou.acr_instances.0.repos", {"web": {"tags": {}}}, "<namespace>/<name>"),
        ("regions.cn-hangzhou.acr_instances.0.internet_endpoint.acl", [{"entry": "nope"}], "entry"),
        ("ram", {"nobody": {"roles": []}}, "unknown account"),
        (
            "regions.cn-hangzhou.acr_instances.0.vpc_endpoint.acl",
            [{"entry": "172.16.0.0/12"}],
            "the VPC endpoint has no CIDR list",
        ),
        (
            "regions.cn-hangzhou.acr_instances.0.vpc_endpoint.linked_vpcs",
            [{"vpc": "vpc-app"}],
            "shares no vSwitch with registry",
        ),
        ("regions.cn-hangzhou.vpcs.0.vswitches.0.shared_with", ["app"], "not another account"),
        ("regions.cn-hangzhou.vpcs.0.vswitches.0.shared_with", ["nobody"], "not another account"),
        (
            "regions.cn-shanghai",
            {"vpcs": [{"id": "vpc-app", "account": "app", "cidr": "10.0.0.0/8"}]},
            "duplicate vpc id",
        ),
    ],
)
def test_broken_world_is_refused_with_the_reason(path: str, value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        World.model_validate(_break(path, value))
    assert message in str(refused.value)


def test_vpc_sharing_and_cross_region_cen_are_accepted() -> None:
    """A VPC of the app account shared with the registry account may be linked to its instance
    (through the shared vSwitch), and CEN may join VPCs of two regions."""
    data = demo_data()
    hangzhou = data["regions"]["cn-hangzhou"]
    hangzhou["vpcs"][0]["vswitches"][1]["shared_with"] = ["registry"]
    demo = hangzhou["acr_instances"][0]
    demo["vpc_endpoint"]["linked_vpcs"].append({"vpc": "vpc-app"})
    data["regions"]["cn-shanghai"] = {
        "vpcs": [{"id": "vpc-sh", "account": "app", "cidr": "10.0.0.0/8"}],
        "cen": [["vpc-sh", "vpc-reg"]],
    }
    world = World.model_validate(data)
    assert world.cen_pairs() == [("vpc-sh", "vpc-reg")]
    bad = _break("regions.cn-hangzhou.acr_instances.0.vpc_endpoint.linked_vpcs", [])
    bad["regions"]["cn-hangzhou"]["vpcs"][0]["vswitches"][1]["shared_with"] = ["registry"]
    bad["regions"]["cn-hangzhou"]["acr_instances"][0]["vpc_endpoint"]["linked_vpcs"] = [
        {"vpc": "vpc-app", "vswitch": "vsw-app-h"}
    ]
    with pytest.raises(ValidationError, match="not a vSwitch of it that registry can use"):
        World.model_validate(bad)
