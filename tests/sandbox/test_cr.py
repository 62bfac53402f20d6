"""ACR Enterprise Edition through the official SDK: instances, endpoints, whitelist, VPC links,
repositories, tags and registry logins, against the demo world's `cri-demo` of account `registry`.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from alibabacloud_cr20181201 import models as cr_models
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_tea_openapi.exceptions import ClientException

from sandbox.services import cr
from sandbox.store import Store
from sandbox.testing import SandboxAdmin, SandboxProcess
from sandbox.world import World, bundled_world_path
from tests.support.clients import UIDS, SdkFactory

INSTANCE = "cri-demo"
PUBLIC_DOMAIN = "demo-registry.cn-hangzhou.cr.aliyuncs.com"
VPC_DOMAIN = "demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com"
EGRESS = "47.96.10.20/32"


def refused(call: Callable[[], Any]) -> tuple[str, int]:
    with pytest.raises(ClientException) as err:
        call()
    return str(err.value.code), int(err.value.status_code)


def failed_in_body(call: Callable[[], Any]) -> str:
    """A call answered with HTTP 200 and `IsSuccess: false`, which the SDK returns as a success;
    the failure's `Code`."""
    response = call()
    assert (response.status_code, response.body.is_success) == (200, False)
    return str(response.body.code)


def endpoint(client: Any, **kw: Any) -> Any:
    request = cr_models.GetInstanceEndpointRequest(
        instance_id=INSTANCE, endpoint_type="internet", **kw
    )
    return client.get_instance_endpoint(request).body


def acl(client: Any) -> dict[str, str]:
    return {e.entry: e.comment for e in endpoint(client).acl_entries}


def repo_id(client: Any, name: str = "web") -> str:
    request = cr_models.GetRepositoryRequest(
        instance_id=INSTANCE, repo_namespace_name="shop", repo_name=name
    )
    return str(client.get_repository(request).body.repo_id)


# -- instances -------------------------------------------------------------------------------------


def test_list_instance_shows_only_enterprise_instances_of_the_caller(sdk: SdkFactory) -> None:
    body = sdk.cr().list_instance(cr_models.ListInstanceRequest()).body
    assert (body.code, body.is_success) == ("success", True)
    assert [i.instance_id for i in body.instances] == [INSTANCE]
    instance = body.instances[0]
    assert instance.instance_name == "demo"
    assert instance.region_id == "cn-hangzhou"
    assert instance.instance_status == "RUNNING"
    assert instance.instance_specification == "Enterprise_Basic"
    assert isinstance(instance.create_time, str)
    assert (body.total_count, body.page_no, body.page_size) == (1, 1, 30)

    assert sdk.cr("app").list_instance(cr_models.ListInstanceRequest()).body.instances == []
    filtered = sdk.cr().list_instance(cr_models.ListInstanceRequest(instance_name="other")).body
    assert (filtered.instances, filtered.total_count) == ([], 0)


def test_get_instance(sdk: SdkFactory) -> None:
    body = sdk.cr().get_instance(cr_models.GetInstanceRequest(instance_id=INSTANCE)).body
    assert body.instance_id == INSTANCE
    assert body.instance_name == "demo"
    assert body.instance_status == "RUNNING"
    assert isinstance(body.create_time, int)
    assert body.create_time <= body.modified_time <= time.time() * 1000 + 1
    assert body.resource_group_id.startswith("rg-")
    assert body.request_id and body.is_success is True


@pytest.mark.parametrize(
    ("account", "instance_id"),
    [("registry", "cri-missing"), ("registry", "crpi-personal"), ("app", INSTANCE)],
    ids=["unknown", "personal-edition", "other-account"],
)
def test_instances_out_of_reach_are_not_found(
    sdk: SdkFactory, account: str, instance_id: str
) -> None:
    client = sdk.cr(account)
    calls: list[Callable[[], Any]] = [
        lambda: client.get_instance(cr_models.GetInstanceRequest(instance_id=instance_id)),
        lambda: client.list_instance_endpoint(
            cr_models.ListInstanceEndpointRequest(instance_id=instance_id)
        ),
        lambda: client.get_instance_endpoint(
            cr_models.GetInstanceEndpointRequest(instance_id=instance_id, endpoint_type="internet")
        ),
        lambda: client.update_instance_endpoint_status(
            cr_models.UpdateInstanceEndpointStatusRequest(
                instance_id=instance_id, endpoint_type="internet", enable=True
            )
        ),
        lambda: client.create_instance_endpoint_acl_policy(
            cr_models.CreateInstanceEndpointAclPolicyRequest(
                instance_id=instance_id, endpoint_type="internet", entry=EGRESS
            )
        ),
        lambda: client.delete_instance_endpoint_acl_policy(
            cr_models.DeleteInstanceEndpointAclPolicyRequest(
                instance_id=instance_id, endpoint_type="internet", entry=EGRESS
            )
        ),
        lambda: client.get_instance_vpc_endpoint(
            cr_models.GetInstanceVpcEndpointRequest(instance_id=instance_id)
        ),
        lambda: client.create_instance_vpc_endpoint_linked_vpc(
            cr_models.CreateInstanceVpcEndpointLinkedVpcRequest(
                instance_id=instance_id, vpc_id="vpc-reg", vswitch_id="vsw-reg-h"
            )
        ),
        lambda: client.delete_instance_vpc_endpoint_linked_vpc(
            cr_models.DeleteInstanceVpcEndpointLinkedVpcRequest(
                instance_id=instance_id, vpc_id="vpc-reg", vswitch_id="vsw-reg-h"
            )
        ),
        lambda: client.list_repository(cr_models.ListRepositoryRequest(instance_id=instance_id)),
        lambda: client.get_repository(
            cr_models.GetRepositoryRequest(
                instance_id=instance_id, repo_namespace_name="shop", repo_name="web"
            )
        ),
        lambda: client.list_repo_tag(
            cr_models.ListRepoTagRequest(instance_id=instance_id, repo_id="crr-x")
        ),
        lambda: client.get_repo_tag(
            cr_models.GetRepoTagRequest(instance_id=instance_id, repo_id="crr-x", tag="1.0")
        ),
        lambda: client.get_authorization_token(
            cr_models.GetAuthorizationTokenRequest(instance_id=instance_id)
        ),
    ]
    for call in calls:
        assert failed_in_body(call) == "INSTANCE_NOT_EXIST"


# -- endpoints and the whitelist -------------------------------------------------------------------


def test_list_instance_endpoint_shows_both_endpoints(sdk: SdkFactory) -> None:
    client = sdk.cr()
    body = client.list_instance_endpoint(
        cr_models.ListInstanceEndpointRequest(instance_id=INSTANCE)
    ).body
    by_type = {e.endpoint_type: e for e in body.endpoints}
    assert set(by_type) == {"internet", "vpc"}
    internet, vpc = by_type["internet"], by_type["vpc"]
    assert (internet.status, internet.enable, internet.acl_enable) == ("RUNNING", True, True)
    assert [e.entry for e in internet.acl_entries] == ["127.0.0.1/32"]
    assert [(d.domain, d.type) for d in internet.domains] == [(PUBLIC_DOMAIN, "SYSTEM")]
    assert internet.linked_vpcs == []
    assert (vpc.status, vpc.enable) == ("RUNNING", True)
    assert [d.domain for d in vpc.domains] == [VPC_DOMAIN]
    assert [v.vpc_id for v in vpc.linked_vpcs] == ["vpc-reg"]

    summary = client.list_instance_endpoint(
        cr_models.ListInstanceEndpointRequest(instance_id=INSTANCE, summary=True)
    ).body
    assert all(e.acl_entries == [] and e.acl_enable is None for e in summary.endpoints)
    assert [d.domain for e in summary.endpoints for d in e.domains] == [PUBLIC_DOMAIN, VPC_DOMAIN]

    chart = client.list_instance_endpoint(
        cr_models.ListInstanceEndpointRequest(instance_id=INSTANCE, module_name="Chart")
    ).body
    assert [d.domain for e in chart.endpoints for d in e.domains] == [
        "demo-chart.cn-hangzhou.cr.aliyuncs.com",
        "demo-chart-vpc.cn-hangzhou.cr.aliyuncs.com",
    ]


def test_get_instance_endpoint(sdk: SdkFactory) -> None:
    body = endpoint(sdk.cr(), module_name="Registry")
    assert (body.code, body.is_success, body.status) == ("success", True, "RUNNING")
    assert (body.enable, body.acl_enable) == (True, True)
    assert [(e.entry, e.comment) for e in body.acl_entries] == [
        ("127.0.0.1/32", "added when the internet endpoint was enabled")
    ]
    assert [(d.domain, d.type) for d in body.domains] == [(PUBLIC_DOMAIN, "SYSTEM")]


def test_acl_entry_round_trip(sdk: SdkFactory, admin: SandboxAdmin) -> None:
    client = sdk.cr()
    create = cr_models.CreateInstanceEndpointAclPolicyRequest(
        instance_id=INSTANCE, endpoint_type="internet", entry=EGRESS, comment="SAE egress"
    )
    body = client.create_instance_endpoint_acl_policy(create).body
    assert (body.code, body.is_success) == ("success", True)
    assert acl(client) == {
        "127.0.0.1/32": "added when the internet endpoint was enabled",
        EGRESS: "SAE egress",
    }

    create.comment = "again"
    client.create_instance_endpoint_acl_policy(create)
    assert acl(client)[EGRESS] == "SAE egress"
    assert len(endpoint(client).acl_entries) == 2

    delete = cr_models.DeleteInstanceEndpointAclPolicyRequest(
        instance_id=INSTANCE, endpoint_type="internet", entry=EGRESS
    )
    assert client.delete_instance_endpoint_acl_policy(delete).body.is_success is True
    assert list(acl(client)) == ["127.0.0.1/32"]
    client.delete_instance_endpoint_acl_policy(delete)
    assert list(acl(client)) == ["127.0.0.1/32"]

    writes = [(w["action"], w["account"]) for w in admin.writes()]
    assert writes == [
        ("CreateInstanceEndpointAclPolicy", "registry"),
        ("CreateInstanceEndpointAclPolicy", "registry"),
        ("DeleteInstanceEndpointAclPolicy", "registry"),
        ("DeleteInstanceEndpointAclPolicy", "registry"),
    ]
    reads = [r for r in admin.requests() if r["action"] == "GetInstanceEndpoint"]
    assert reads and not any(r["write"] for r in reads)
    assert all(r["product"] == "cr" and r["status"] == 200 for r in reads)


@pytest.mark.contract_breaches
def test_acl_batch_entries_are_not_in_the_contract(sdk: SdkFactory, admin: SandboxAdmin) -> None:
    """The SDK can send `Entries`, but the API metadata (sandbox/api_meta) knows only `Entry`:
    the batch is ignored, so without `Entry` the call misses its required parameter."""
    client = sdk.cr()
    entries = [cr_models.AccessControlEntry(entry="10.0.0.0/8", comment="office")]
    request = cr_models.CreateInstanceEndpointAclPolicyRequest(
        instance_id=INSTANCE, endpoint_type="internet", entries=entries
    )
    assert refused(partial(client.create_instance_endpoint_acl_policy, request)) == (
        "MissingParameter",
        400,
    )
    request.entry = "47.96.10.21/32"
    client.create_instance_endpoint_acl_policy(request)
    assert admin.requests()[-1]["ignored"] == ["Entries"]
    assert list(acl(client)) == ["127.0.0.1/32", "47.96.10.21/32"]


@pytest.mark.parametrize(
    "entry", ["10.0.0.300/32", "10.0.0.1", "10.0.0.1/24", "10.0.0.0/33", "any", "::1/128"]
)
def test_acl_entry_must_be_a_cidr(sdk: SdkFactory, entry: str) -> None:
    client = sdk.cr()
    request = cr_models.CreateInstanceEndpointAclPolicyRequest(
        instance_id=INSTANCE, endpoint_type="internet", entry=entry
    )
    assert refused(lambda: client.create_instance_endpoint_acl_policy(request)) == (
        "InvalidParameter",
        400,
    )
    assert list(acl(client)) == ["127.0.0.1/32"]


@pytest.mark.contract_breaches
def test_acl_needs_an_entry(sdk: SdkFactory) -> None:
    request = cr_models.CreateInstanceEndpointAclPolicyRequest(
        instance_id=INSTANCE, endpoint_type="internet"
    )
    assert refused(lambda: sdk.cr().create_instance_endpoint_acl_policy(request)) == (
        "MissingParameter",
        400,
    )


def test_only_the_internet_endpoint_has_status_and_whitelist(sdk: SdkFactory) -> None:
    client = sdk.cr()
    calls: list[Callable[[], Any]] = [
        lambda: client.get_instance_endpoint(
            cr_models.GetInstanceEndpointRequest(instance_id=INSTANCE, endpoint_type="vpc")
        ),
        lambda: client.update_instance_endpoint_status(
            cr_models.UpdateInstanceEndpointStatusRequest(
                instance_id=INSTANCE, endpoint_type="vpc", enable=False
            )
        ),
        lambda: client.create_instance_endpoint_acl_policy(
            cr_models.CreateInstanceEndpointAclPolicyRequest(
                instance_id=INSTANCE, endpoint_type="vpc", entry=EGRESS
            )
        ),
        lambda: client.delete_instance_endpoint_acl_policy(
            cr_models.DeleteInstanceEndpointAclPolicyRequest(
                instance_id=INSTANCE, endpoint_type="intranet", entry=EGRESS
            )
        ),
        lambda: client.get_instance_endpoint(
            cr_models.GetInstanceEndpointRequest(
                instance_id=INSTANCE, endpoint_type="internet", module_name="Helm"
            )
        ),
    ]
    for call in calls:
        assert refused(call) == ("InvalidParameter", 400)


def test_disable_and_enable_the_internet_endpoint(sdk: SdkFactory, admin: SandboxAdmin) -> None:
    admin.set_timing(endpoint_transition_seconds=0)
    client = sdk.cr()

    def set_enabled(enable: bool) -> None:
        client.update_instance_endpoint_status(
            cr_models.UpdateInstanceEndpointStatusRequest(
                instance_id=INSTANCE, endpoint_type="internet", enable=enable
            )
        )

    set_enabled(False)
    off = endpoint(client)
    assert (off.enable, [e.entry for e in off.acl_entries]) == (False, ["127.0.0.1/32"])

    client.delete_instance_endpoint_acl_policy(
        cr_models.DeleteInstanceEndpointAclPolicyRequest(
            instance_id=INSTANCE, endpoint_type="internet", entry="127.0.0.1/32"
        )
    )
    assert (endpoint(client).acl_enable, endpoint(client).acl_entries) == (False, [])

    set_enabled(True)
    on = endpoint(client)
    assert (on.enable, on.acl_enable) == (True, True)
    assert [e.entry for e in on.acl_entries] == ["127.0.0.1/32"]

    client.create_instance_endpoint_acl_policy(
        cr_models.CreateInstanceEndpointAclPolicyRequest(
            instance_id=INSTANCE, endpoint_type="internet", entry=EGRESS
        )
    )
    set_enabled(True)
    assert list(acl(client)) == ["127.0.0.1/32", EGRESS]


def wait_running(client: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while (body := endpoint(client)).status != "RUNNING":
        assert time.monotonic() < deadline, body.status
        time.sleep(0.1)
    return body


def test_a_switched_endpoint_settles_and_drops_acl_writes_until_running(
    sdk: SdkFactory, admin: SandboxAdmin
) -> None:
    """Switched off it is DELETING, switched on CREATING, for the world's transition time; ACL
    writes meanwhile succeed and change nothing; once RUNNING they apply."""
    admin.set_timing(endpoint_transition_seconds=0.8)
    client = sdk.cr()

    def switch(enable: bool) -> None:
        client.update_instance_endpoint_status(
            cr_models.UpdateInstanceEndpointStatusRequest(
                instance_id=INSTANCE, endpoint_type="internet", enable=enable
            )
        )

    def write(entry: str, *, add: bool) -> bool:
        if add:
            request: Any = cr_models.CreateInstanceEndpointAclPolicyRequest(
                instance_id=INSTANCE, endpoint_type="internet", entry=entry
            )
            return bool(client.create_instance_endpoint_acl_policy(request).body.is_success)
        request = cr_models.DeleteInstanceEndpointAclPolicyRequest(
            instance_id=INSTANCE, endpoint_type="internet", entry=entry
        )
        return bool(client.delete_instance_endpoint_acl_policy(request).body.is_success)

    assert endpoint(client).status == "RUNNING"
    switch(False)
    assert (endpoint(client).status, endpoint(client).enable) == ("DELETING", False)
    assert write("127.0.0.1/32", add=False) is True
    assert list(acl(client)) == ["127.0.0.1/32"]
    assert wait_running(client).enable is False
    write("127.0.0.1/32", add=False)
    assert list(acl(client)) == []

    started = time.monotonic()
    switch(True)
    creating = endpoint(client)
    assert (creating.status, creating.enable) == ("CREATING", True)
    assert [e.entry for e in creating.acl_entries] == ["127.0.0.1/32"]
    assert write(EGRESS, add=True) is True
    assert list(acl(client)) == ["127.0.0.1/32"]
    wait_running(client)
    assert time.monotonic() - started >= 0.7
    write(EGRESS, add=True)
    assert list(acl(client)) == ["127.0.0.1/32", EGRESS]
    switch(True)
    assert endpoint(client).status == "RUNNING"
    listed = client.list_instance_endpoint(
        cr_models.ListInstanceEndpointRequest(instance_id=INSTANCE)
    ).body.endpoints
    assert {e.endpoint_type: e.status for e in listed} == {"internet": "RUNNING", "vpc": "RUNNING"}


# -- VPC endpoint ----------------------------------------------------------------------------------


def vpc_endpoint(client: Any) -> Any:
    request = cr_models.GetInstanceVpcEndpointRequest(instance_id=INSTANCE)
    return client.get_instance_vpc_endpoint(request).body


def test_vpc_link_round_trip(sdk: SdkFactory) -> None:
    client = sdk.cr()
    body = vpc_endpoint(client)
    assert (body.enable, body.domains, body.module_name) == (True, [VPC_DOMAIN], "Registry")
    [link] = body.linked_vpcs
    assert (link.vpc_id, link.vswitch_id, link.status, link.default_access) == (
        "vpc-reg",
        "vsw-reg-h",
        "RUNNING",
        True,
    )
    assert ipaddress.IPv4Address(link.ip) in ipaddress.IPv4Network("192.168.1.0/24")

    unlink = cr_models.DeleteInstanceVpcEndpointLinkedVpcRequest(
        instance_id=INSTANCE, vpc_id="vpc-reg", vswitch_id="vsw-reg-h"
    )
    assert client.delete_instance_vpc_endpoint_linked_vpc(unlink).body.is_success is True
    assert (vpc_endpoint(client).enable, vpc_endpoint(client).linked_vpcs) == (False, [])
    client.delete_instance_vpc_endpoint_linked_vpc(unlink)

    relink = cr_models.CreateInstanceVpcEndpointLinkedVpcRequest(
        instance_id=INSTANCE,
        vpc_id="vpc-reg",
        vswitch_id="vsw-reg-h",
        enable_create_dnsrecord_in_pvzt=True,
    )
    assert client.create_instance_vpc_endpoint_linked_vpc(relink).body.is_success is True
    client.create_instance_vpc_endpoint_linked_vpc(relink)
    again = vpc_endpoint(client)
    assert [(v.vpc_id, v.vswitch_id, v.ip) for v in again.linked_vpcs] == [
        ("vpc-reg", "vsw-reg-h", link.ip)
    ]


def test_a_new_link_is_creating_then_running_and_the_vpc_endpoint_has_no_cidr_list(
    sdk: SdkFactory, admin: SandboxAdmin
) -> None:
    admin.set_timing(endpoint_transition_seconds=0.6)
    client = sdk.cr()
    client.delete_instance_vpc_endpoint_linked_vpc(
        cr_models.DeleteInstanceVpcEndpointLinkedVpcRequest(
            instance_id=INSTANCE, vpc_id="vpc-reg", vswitch_id="vsw-reg-h"
        )
    )
    client.create_instance_vpc_endpoint_linked_vpc(
        cr_models.CreateInstanceVpcEndpointLinkedVpcRequest(
            instance_id=INSTANCE, vpc_id="vpc-reg", vswitch_id="vsw-reg-h"
        )
    )
    assert [v.status for v in vpc_endpoint(client).linked_vpcs] == ["CREATING"]
    deadline = time.monotonic() + 5
    while vpc_endpoint(client).linked_vpcs[0].status != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    listed = client.list_instance_endpoint(
        cr_models.ListInstanceEndpointRequest(instance_id=INSTANCE)
    ).body.endpoints
    vpc = next(e for e in listed if e.endpoint_type == "vpc")
    assert (vpc.acl_enable, vpc.acl_entries, [v.vpc_id for v in vpc.linked_vpcs]) == (
        False,
        [],
        ["vpc-reg"],
    )


def test_a_vpc_shared_with_the_registry_account_can_be_linked(tmp_path: Path) -> None:
    """VPC sharing: account B links account A's VPC through the vSwitch A shares with it, and
    only through that one."""
    data = yaml.safe_load(bundled_world_path().read_text())
    data["regions"]["cn-hangzhou"]["vpcs"][0]["vswitches"][0]["shared_with"] = ["registry"]
    path = tmp_path / "world.yaml"
    path.write_text(yaml.safe_dump(data))
    with SandboxProcess(world=path) as process:
        client = SdkFactory(process.endpoint).cr()

        def link(vswitch_id: str) -> Any:
            return client.create_instance_vpc_endpoint_linked_vpc(
                cr_models.CreateInstanceVpcEndpointLinkedVpcRequest(
                    instance_id=INSTANCE, vpc_id="vpc-app", vswitch_id=vswitch_id
                )
            )

        assert failed_in_body(lambda: link("vsw-app-b")) == "VSWITCH_NOT_EXIST"
        assert link("vsw-app-h").body.is_success is True
        linked = {v.vpc_id: v.vswitch_id for v in vpc_endpoint(client).linked_vpcs}
        assert linked == {"vpc-reg": "vsw-reg-h", "vpc-app": "vsw-app-h"}


@pytest.mark.parametrize(
    ("vpc_id", "vswitch_id", "code"),
    [
        ("vpc-app", "vsw-app-h", "VPC_NOT_EXIST"),
        ("vpc-none", "vsw-reg-h", "VPC_NOT_EXIST"),
        ("vpc-reg", "vsw-app-h", "VSWITCH_NOT_EXIST"),
    ],
    ids=["other-accounts-unshared-vpc", "unknown-vpc", "vswitch-of-another-vpc"],
)
def test_link_needs_a_vpc_of_the_callers_account(
    sdk: SdkFactory, vpc_id: str, vswitch_id: str, code: str
) -> None:
    client = sdk.cr()
    request = cr_models.CreateInstanceVpcEndpointLinkedVpcRequest(
        instance_id=INSTANCE, vpc_id=vpc_id, vswitch_id=vswitch_id
    )
    assert failed_in_body(lambda: client.create_instance_vpc_endpoint_linked_vpc(request)) == code
    assert [v.vpc_id for v in vpc_endpoint(client).linked_vpcs] == ["vpc-reg"]


# -- repositories and images -----------------------------------------------------------------------


def test_list_and_get_repositories(sdk: SdkFactory) -> None:
    client = sdk.cr()
    body = client.list_repository(cr_models.ListRepositoryRequest(instance_id=INSTANCE)).body
    assert [(r.repo_namespace_name, r.repo_name) for r in body.repositories] == [
        ("shop", "web"),
        ("shop", "worker"),
    ]
    assert (body.total_count, body.page_no, body.page_size) == ("2", 1, 30)
    web = body.repositories[0]
    assert web.repo_id.startswith("crr-")
    assert (web.repo_type, web.repo_status, web.instance_id) == ("PRIVATE", "NORMAL", INSTANCE)
    assert isinstance(web.create_time, int)

    by_name = client.list_repository(
        cr_models.ListRepositoryRequest(instance_id=INSTANCE, repo_name="worker")
    ).body
    assert ([r.repo_name for r in by_name.repositories], by_name.total_count) == (["worker"], "1")
    deleted = client.list_repository(
        cr_models.ListRepositoryRequest(instance_id=INSTANCE, repo_status="DELETED")
    ).body
    assert (deleted.repositories, deleted.total_count) == ([], "0")

    got = client.get_repository(
        cr_models.GetRepositoryRequest(instance_id=INSTANCE, repo_id=web.repo_id)
    ).body
    assert (got.repo_id, got.repo_namespace_name, got.repo_name) == (web.repo_id, "shop", "web")
    assert repo_id(client) == web.repo_id


def test_repository_ids_are_stable_across_resets(sdk: SdkFactory, admin: SandboxAdmin) -> None:
    before = repo_id(sdk.cr())
    admin.reset()
    assert repo_id(sdk.cr()) == before


def test_list_and_get_tags(sdk: SdkFactory) -> None:
    client = sdk.cr()
    web = repo_id(client)
    body = client.list_repo_tag(
        cr_models.ListRepoTagRequest(instance_id=INSTANCE, repo_id=web)
    ).body
    assert [(i.tag, i.digest) for i in body.images] == [
        ("1.0", "sha256:aaaa"),
        ("1.1", "sha256:bbbb"),
    ]
    assert body.total_count == "2"
    image = body.images[1]
    assert isinstance(image.image_create, str) and image.image_create.isdigit()
    assert image.image_size > 0 and len(image.image_id) == 64 and image.status == "NORMAL"

    tag = client.get_repo_tag(
        cr_models.GetRepoTagRequest(instance_id=INSTANCE, repo_id=web, tag="1.1")
    ).body
    assert (tag.tag, tag.digest, tag.image_id, tag.status) == (
        "1.1",
        "sha256:bbbb",
        image.image_id,
        "NORMAL",
    )
    assert tag.image_create == int(image.image_create)
    assert tag.image_size == image.image_size

    worker = client.list_repo_tag(
        cr_models.ListRepoTagRequest(instance_id=INSTANCE, repo_id=repo_id(client, "worker"))
    ).body
    assert [i.tag for i in worker.images] == ["2.0"]


def test_unknown_repository_and_tag(sdk: SdkFactory) -> None:
    client = sdk.cr()
    web = repo_id(client)
    calls: list[tuple[Callable[[], Any], str]] = [
        (
            lambda: client.get_repository(
                cr_models.GetRepositoryRequest(
                    instance_id=INSTANCE, repo_namespace_name="shop", repo_name="api"
                )
            ),
            "REPO_NOT_EXIST",
        ),
        (
            lambda: client.get_repository(
                cr_models.GetRepositoryRequest(instance_id=INSTANCE, repo_id="crr-missing")
            ),
            "REPO_NOT_EXIST",
        ),
        (
            lambda: client.list_repo_tag(
                cr_models.ListRepoTagRequest(instance_id=INSTANCE, repo_id="crr-missing")
            ),
            "REPO_NOT_EXIST",
        ),
        (
            lambda: client.get_repo_tag(
                cr_models.GetRepoTagRequest(instance_id=INSTANCE, repo_id="crr-missing", tag="1.0")
            ),
            "REPO_NOT_EXIST",
        ),
        (
            lambda: client.get_repo_tag(
                cr_models.GetRepoTagRequest(instance_id=INSTANCE, repo_id=web, tag="9.9")
            ),
            "TAG_NOT_EXIST",
        ),
    ]
    for call, code in calls:
        assert failed_in_body(call) == code


@pytest.mark.contract_breaches
def test_paging(sdk: SdkFactory) -> None:
    client = sdk.cr()
    web = repo_id(client)
    second = client.list_repo_tag(
        cr_models.ListRepoTagRequest(instance_id=INSTANCE, repo_id=web, page_no=2, page_size=1)
    ).body
    assert ([i.tag for i in second.images], second.total_count) == (["1.1"], "2")
    assert (second.page_no, second.page_size) == (2, 1)
    beyond = client.list_repository(
        cr_models.ListRepositoryRequest(instance_id=INSTANCE, page_no=3, page_size=1)
    ).body
    assert (beyond.repositories, beyond.total_count) == ([], "2")
    instances = client.list_instance(cr_models.ListInstanceRequest(page_no=1, page_size=100)).body
    assert instances.page_size == 100

    # MaxResults/NextToken are in the SDK but not in the metadata: ignored, PageNo paging applies.
    page = client.list_repository(
        cr_models.ListRepositoryRequest(instance_id=INSTANCE, max_results=1, next_token="x")
    ).body
    assert ([r.repo_name for r in page.repositories], page.next_token) == (["web", "worker"], None)

    for request in (
        cr_models.ListRepositoryRequest(instance_id=INSTANCE, page_size=101),
        cr_models.ListRepositoryRequest(instance_id=INSTANCE, page_no=0),
    ):
        assert refused(partial(client.list_repository, request)) == ("InvalidParameter", 400)


# -- registry login --------------------------------------------------------------------------------


@pytest.mark.contract_breaches
def test_authorization_token_is_a_fresh_temporary_password(sdk: SdkFactory) -> None:
    client = sdk.cr()
    started = time.time() * 1000
    first = client.get_authorization_token(
        cr_models.GetAuthorizationTokenRequest(instance_id=INSTANCE)
    ).body
    assert first.temp_username == "cr_temp_user"
    assert first.authorization_token and first.authorization_token != "sandbox-registry-login"
    assert started + 3_590_000 <= first.expire_time <= time.time() * 1000 + 3_600_000

    # ExpiresInHours is in the SDK but not in the metadata: ignored, the token lasts an hour.
    day = client.get_authorization_token(
        cr_models.GetAuthorizationTokenRequest(instance_id=INSTANCE, expires_in_hours=24)
    ).body
    assert day.authorization_token != first.authorization_token
    assert day.expire_time - first.expire_time < 60_000


@pytest.mark.contract_breaches
def test_authorization_token_ends_with_the_sts_session(sdk: SdkFactory) -> None:
    trust = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{UIDS['app']}:root"]},
            }
        ],
    }
    ram = sdk.ram("registry")
    role = ram.create_role(
        ram_models.CreateRoleRequest(
            role_name="puller", assume_role_policy_document=json.dumps(trust)
        )
    ).body.role
    ram.attach_policy_to_role(
        ram_models.AttachPolicyToRoleRequest(
            policy_type="System",
            policy_name="AliyunContainerRegistryReadOnlyAccess",
            role_name="puller",
        )
    )
    creds = (
        sdk.sts("app")
        .assume_role(
            sts_models.AssumeRoleRequest(
                role_arn=role.arn, role_session_name="pull", duration_seconds=900
            )
        )
        .body.credentials
    )
    client = sdk.cr(key=(creds.access_key_id, creds.access_key_secret), token=creds.security_token)
    body = client.get_authorization_token(
        cr_models.GetAuthorizationTokenRequest(instance_id=INSTANCE, expires_in_hours=24)
    ).body
    assert body.expire_time <= (time.time() + 901) * 1000
    assert [
        i.instance_id for i in client.list_instance(cr_models.ListInstanceRequest()).body.instances
    ] == [INSTANCE]


# -- signatures and the request log ----------------------------------------------------------------


def test_legacy_v2_signature(sdk: SdkFactory, admin: SandboxAdmin) -> None:
    client = sdk.cr("registry", v2=True)
    web = repo_id(client)
    tag = client.get_repo_tag(
        cr_models.GetRepoTagRequest(instance_id=INSTANCE, repo_id=web, tag="1.0")
    ).body
    assert tag.digest == "sha256:aaaa"
    client.create_instance_endpoint_acl_policy(
        cr_models.CreateInstanceEndpointAclPolicyRequest(
            instance_id=INSTANCE,
            endpoint_type="internet",
            entry=EGRESS,
            comment="v2",
        )
    )
    assert acl(client)[EGRESS] == "v2"
    log = [(r["action"], r["write"], r["status"]) for r in admin.requests()]
    assert ("GetRepoTag", False, 200) in log
    assert ("CreateInstanceEndpointAclPolicy", True, 200) in log


def test_errors_are_logged_with_their_code(sdk: SdkFactory, admin: SandboxAdmin) -> None:
    """A failure told in a 200 body is logged with its code, as an error status is."""
    request = cr_models.GetInstanceRequest(instance_id=INSTANCE)
    failed_in_body(lambda: sdk.cr("app").get_instance(request))
    last = admin.requests()[-1]
    assert (last["account"], last["action"], last["status"], last["code"]) == (
        "app",
        "GetInstance",
        200,
        "INSTANCE_NOT_EXIST",
    )


# -- helpers the image-pull judgment uses ----------------------------------------------------------


def test_lookup_helpers(tmp_path: Path, demo_world: World) -> None:
    store = Store(tmp_path / "state.db")
    with store.transaction() as tx:
        cr.seed(tx, demo_world)
        found = cr.find_instance(tx, UIDS["registry"], INSTANCE)
        assert found is not None and found[0].region == "cn-hangzhou"
        assert cr.find_instance(tx, UIDS["app"], INSTANCE) is None
        assert cr.find_instance(tx, UIDS["registry"], "crpi-personal") is None

        for domain in (PUBLIC_DOMAIN, VPC_DOMAIN, PUBLIC_DOMAIN.upper() + ":443"):
            hit = cr.instance_for_domain(tx, domain)
            assert hit is not None and hit[1]["id"] == INSTANCE
        assert cr.instance_for_domain(tx, "other-registry.cn-hangzhou.cr.aliyuncs.com") is None

        personal_domain = "registry-vpc.cn-hangzhou.aliyuncs.com"
        assert cr.instance_for_domain(tx, personal_domain) is None
        personal = cr.instance_for_domain(tx, personal_domain, namespace="shop-personal")
        assert personal is not None and personal[1]["edition"] == "personal"
        assert personal[0].account == UIDS["registry"]

        doc = found[1]
        assert cr.accepts_login(
            doc, "registry@2222222222222222", "sandbox-registry-login", time.time()
        )
        assert not cr.accepts_login(doc, "registry@2222222222222222", "wrong", time.time())
        doc["temp_logins"].append({"username": "cr_temp_user", "password": "t", "expires_ms": 0})
        assert not cr.accepts_login(doc, "cr_temp_user", "t", time.time())
    store.close()
