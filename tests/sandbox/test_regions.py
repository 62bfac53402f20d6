"""Regions: SAE, VPC and CR answer for the region a request addressed, RAM and STS are global.

The sandbox learns the region as the cloud does from the endpoint host (sandbox/regions.py: a
real host name, else the header the block adds behind an endpoint override, else `RegionId`), and
answers for that region only, list calls included. The product builds each client for the region
of what it acts on (A: `app.region`; B: the image's region), whatever its blocks' `region_id`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from alibabacloud_cr20181201 import models as cr_models
from alibabacloud_sae20190506 import models as sae_models
from alibabacloud_vpc20160428 import models as vpc_models

from sandbox.testing import SandboxAdmin, SandboxProcess
from tests.support.clients import SdkFactory, refused, sandbox_credentials
from tests.support.deploy_support import deploy, forget_ledgers, save_blocks
from tests.support.raw_requests import signed_headers
from tests.support.specs import make_spec
from tests.support.worlds import FAST_TIMING, demo_world_data
from tests.support.worlds import write_world as write_world_file

SHANGHAI = "cn-shanghai"
_LOGIN = {"username": "u", "password": "pw", "auth": base64.b64encode(b"u:pw").decode()}
DOCKER_CONFIG = base64.b64encode(
    json.dumps({"auths": {"demo-registry.cn-hangzhou.cr.aliyuncs.com": _LOGIN}}).encode()
).decode()


def two_region_world() -> dict[str, Any]:
    """The demo world (everything in cn-hangzhou) plus an empty VPC and namespace in cn-shanghai."""
    data = demo_world_data(**FAST_TIMING)
    data["regions"][SHANGHAI] = {
        "vpcs": [
            {
                "id": "vpc-app-sh",
                "account": "app",
                "cidr": "10.0.0.0/8",
                "vswitches": [{"id": "vsw-app-sh", "cidr": "10.1.0.0/24", "zone": "cn-shanghai-b"}],
                "security_groups": ["sg-app-sh"],
            }
        ],
        "sae_namespaces": [
            {"id": "cn-shanghai:web", "name": "web", "account": "app", "vpc": "vpc-app-sh"}
            | {"vswitch": "vsw-app-sh", "security_group": "sg-app-sh"}
        ],
    }
    return data


@pytest.fixture(scope="module")
def regions_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    path = write_world_file(two_region_world(), tmp_path_factory.mktemp("regions-world"))
    with SandboxProcess(world=path) as process:
        yield process


@pytest.fixture
def admin(regions_process: SandboxProcess) -> Iterator[SandboxAdmin]:
    client = SandboxAdmin(regions_process.url)
    client.reset()
    yield client
    client.close()


@pytest.fixture
def sdk(admin: SandboxAdmin, regions_process: SandboxProcess) -> SdkFactory:
    return SdkFactory(regions_process.endpoint)


def _namespaces(sae: Any) -> list[str]:
    listing = sae.describe_namespace_list(
        sae_models.DescribeNamespaceListRequest(contain_custom=True)
    )
    return sorted(n.namespace_id for n in listing.body.data)


# -- the sandbox -------------------------------------------------------------------------------


def test_each_regional_list_answers_for_the_region_the_client_was_built_for(
    sdk: SdkFactory,
) -> None:
    for region, ours in (("cn-hangzhou", "cn-hangzhou:demo"), (SHANGHAI, "cn-shanghai:web")):
        listed = _namespaces(sdk.sae(region=region))
        assert ours in listed
        assert all(n.split(":")[0] == region for n in listed), listed

    def instances(region: str) -> list[str]:
        listing = sdk.cr(region=region).list_instance(cr_models.ListInstanceRequest())
        return [i.instance_id for i in listing.body.instances or []]

    assert instances("cn-hangzhou") == ["cri-demo"]
    assert instances(SHANGHAI) == []

    def vpcs(region: str) -> list[str]:
        listing = sdk.vpc(region=region).describe_vpcs(
            vpc_models.DescribeVpcsRequest(region_id=region)
        )
        return [v.vpc_id for v in listing.body.vpcs.vpc]

    assert vpcs("cn-hangzhou") == ["vpc-app"]
    assert vpcs(SHANGHAI) == ["vpc-app-sh"]


def test_a_client_built_for_the_wrong_region_finds_nothing(sdk: SdkFactory) -> None:
    """The demo's instance, namespace and vSwitch live in cn-hangzhou; a cn-shanghai client
    is served by cn-shanghai's endpoint, which never heard of them."""
    cr = sdk.cr(region=SHANGHAI)
    found = cr.get_instance(cr_models.GetInstanceRequest(instance_id="cri-demo")).body
    assert found.is_success is False  # ACR's not-found: HTTP 200 with IsSuccess false
    sae = sdk.sae(region=SHANGHAI)
    listing = sae.list_applications(sae_models.ListApplicationsRequest())
    assert listing.body.data.applications == []
    assert refused(
        lambda: sae.describe_namespace(
            sae_models.DescribeNamespaceRequest(namespace_id="cn-hangzhou:demo")
        )
    ) == ("InvalidNamespaceId.NotFound", 404)
    vpc = sdk.vpc(region=SHANGHAI)
    assert refused(
        lambda: vpc.describe_vswitch_attributes(
            vpc_models.DescribeVSwitchAttributesRequest(v_switch_id="vsw-app-h")
        )
    ) == ("InvalidVSwitchId.NotFound", 404)


def test_a_region_id_other_than_the_addressed_region_is_refused(sdk: SdkFactory) -> None:
    vpc = sdk.vpc(region="cn-hangzhou")
    assert refused(
        lambda: vpc.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=SHANGHAI))
    ) == ("Sandbox.RegionMismatch", 400)


def test_a_regional_request_that_names_no_region_is_refused(
    admin: SandboxAdmin, regions_process: SandboxProcess
) -> None:
    """No region host, no header, no RegionId: the sandbox says how to send one."""
    url = regions_process.url
    headers = signed_headers(url, action="ListInstance", version="2018-12-01", account="registry")
    answer = httpx.post(url, headers=headers, timeout=10)
    assert (answer.status_code, answer.json()["Code"]) == (400, "Sandbox.MissingRegion")
    assert "x-sandbox-region" in answer.json()["Message"]
    # STS is global: the same request shape without a region is served.
    identity = httpx.post(url, headers=signed_headers(url), timeout=10)
    assert identity.status_code == 200, identity.text


@pytest.mark.parametrize(("host", "expected"), [("cn-hangzhou", ["cri-demo"]), (SHANGHAI, [])])
def test_a_real_endpoint_host_name_addresses_its_region(
    admin: SandboxAdmin, regions_process: SandboxProcess, host: str, expected: list[str]
) -> None:
    url = regions_process.url
    headers = signed_headers(
        f"http://cr.{host}.aliyuncs.com",
        action="ListInstance",
        version="2018-12-01",
        account="registry",
    )
    answer = httpx.post(url, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    assert [i["InstanceId"] for i in answer.json()["Instances"]] == expected


def test_the_request_log_names_each_requests_region_and_its_masked_parameters(
    sdk: SdkFactory, admin: SandboxAdmin
) -> None:
    sdk.sae(region=SHANGHAI).list_applications(sae_models.ListApplicationsRequest(app_name="x"))
    sdk.ram().list_roles(_ram_list_roles())
    sdk.sae().create_secret(
        sae_models.CreateSecretRequest(
            namespace_id="cn-hangzhou:demo",
            secret_name="login",
            secret_type="kubernetes.io/dockerconfigjson",
            secret_data=sae_models.CreateSecretRequestSecretData(
                secret_data=json.dumps({".dockerconfigjson": DOCKER_CONFIG})
            ),
        )
    )
    log = admin.requests()
    by_action = {entry["action"]: entry for entry in log}
    listed = by_action["ListApplications"]
    assert (listed["region"], listed["params"]["AppName"]) == (SHANGHAI, "x")
    assert by_action["ListRoles"]["region"] is None
    assert by_action["ListRoles"]["params"]["MaxItems"] == "5"
    created = by_action["CreateSecret"]
    assert created["region"] == "cn-hangzhou"
    assert created["params"]["SecretName"] == "login"
    assert created["params"]["SecretData"] == "******"
    assert DOCKER_CONFIG not in str(log)


def _ram_list_roles() -> Any:
    from alibabacloud_ram20150501 import models as ram_models

    return ram_models.ListRolesRequest(max_items=5)


# -- the product -------------------------------------------------------------------------------


def test_blocks_whose_region_is_not_the_specs_deploy_in_the_specs_region(
    prefect_harness: None, admin: SandboxAdmin, regions_process: SandboxProcess, sdk: SdkFactory
) -> None:
    """Both blocks default to cn-shanghai; the app and image are in cn-hangzhou. Every SAE, VPC
    and CR request goes to cn-hangzhou, and the app lands there."""
    forget_ledgers()
    save_blocks(regions_process.url)
    for account, name in (("app", "region-app"), ("registry", "region-registry")):
        sandbox_credentials(regions_process.url, account, region_id=SHANGHAI).save(
            name, overwrite=True
        )
    spec = make_spec(accounts={"app": "region-app", "registry": "region-registry"})
    result = deploy(spec).result
    assert result.app_id
    regional = [r for r in admin.requests() if r["product"] in ("sae", "vpc", "cr")]
    assert regional
    assert {r["region"] for r in regional} == {"cn-hangzhou"}
    listing = sdk.sae().list_applications(sae_models.ListApplicationsRequest(app_name="shop-web"))
    assert [a.app_id for a in listing.body.data.applications] == [result.app_id]
