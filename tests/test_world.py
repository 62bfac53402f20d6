"""World files: the bundled demo is valid per the contract, and broken references are refused."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from sandbox.world import World, bundled_world_path, load_world


def demo_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(bundled_world_path().read_text())
    return data


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
    ],
)
def test_broken_world_is_refused_with_the_reason(path: str, value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        World.model_validate(_break(path, value))
    assert message in str(refused.value)
