"""The account-B steps against the sandbox, through the credential blocks: image, pull role, pull
policy, whitelist.

For each step: a fresh world plans the right actions, apply makes them, a second inspect is all
OK and a second apply writes nothing; teardown gives back exactly the world it started from. The
last test proves the output works: SAE in account A pulls with the role and the whitelist made here.
"""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import yaml
from alibabacloud_cr20181201 import models as cr_models
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_vpc20160428 import models as vpc_models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossdeploy import ram_policy
from crossdeploy.cloud import CloudError, call
from crossdeploy.plan import BLOCKED, OK, SKIP, Change
from crossdeploy.spec import DeploySpec
from sandbox.policy import Decision, PolicyDocument, trust_allows
from sandbox.policy import Principal as SandboxPrincipal
from sandbox.testing import SandboxAdmin, SandboxProcess
from tasks.image import inspect_image
from tasks.pull_policy import (
    apply_pull_policy,
    inspect_pull_policy,
    remove_pull_policy,
)
from tasks.pull_role import apply_pull_role, inspect_pull_role, remove_pull_role
from tasks.whitelist import (
    EndpointNotReadyError,
    EndpointWait,
    apply_whitelist,
    inspect_whitelist,
    remove_whitelist,
)
from tests.support.clients import UIDS, SdkFactory, sandbox_credentials
from tests.support.pull_worlds import connect_cen, instance_scoped_pull_policy, variant
from tests.support.sae_setup import create_app, ready_cross_account, wait_for
from tests.support.specs import make_spec
from tests.support.worlds import FAST_TIMING, demo_world_data

APP_UID, REGISTRY_UID = UIDS["app"], UIDS["registry"]
SAE = ram_policy.sae_principal(APP_UID)
ROLE = "sae-pull-shop-web"
EGRESS_IP = "47.96.10.20"
APP_VPC = "vpc-app"
PERSONAL_URL = "registry.cn-hangzhou.aliyuncs.com/shop-personal/web:1.0"
VPC_URL = "demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com/shop/web:1.1"
VOLATILE = {
    "CreateDate",
    "UpdateDate",
    "AttachDate",
    "created_ms",
    "modified_ms",
    "NextVersion",
    "settles_at",
}
"""Timestamps, and RAM's version counter: version ids are never reused, so a removed v2 leaves the
next one v3, as in the real service."""
OTHER_TRUST = {
    "Version": "1",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"RAM": ["acs:ram::3333333333333333:root"]},
        }
    ],
}


SPEC = make_spec()


def write_count(admin: SandboxAdmin) -> int:
    return len(admin.writes())


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def registry_world(admin: SandboxAdmin) -> Any:
    """Everything account B owns, without timestamps."""
    return _strip(admin.state()["registry"])


def trust_of(sdk: SdkFactory, name: str = ROLE) -> ram_policy.Document:
    role = sdk.ram().get_role(ram_models.GetRoleRequest(role_name=name)).body.role
    return ram_policy.parse(role.assume_role_policy_document)


def make_role(sdk: SdkFactory, document: ram_policy.Document, name: str = ROLE) -> None:
    request = ram_models.CreateRoleRequest(
        role_name=name, assume_role_policy_document=ram_policy.to_text(document)
    )
    sdk.ram().create_role(request)


def internet_acl(sdk: SdkFactory) -> tuple[bool, dict[str, str]]:
    request = cr_models.GetInstanceEndpointRequest(
        instance_id="cri-demo", endpoint_type="internet", module_name="Registry"
    )
    body = sdk.cr().get_instance_endpoint(request).body
    return bool(body.enable), {a.entry: a.comment for a in body.acl_entries or []}


def set_endpoint(sdk: SdkFactory, *, enable: bool) -> None:
    sdk.cr().update_instance_endpoint_status(
        cr_models.UpdateInstanceEndpointStatusRequest(
            instance_id="cri-demo", endpoint_type="internet", enable=enable, module_name="Registry"
        )
    )


def acl(sdk: SdkFactory, entry: str, *, add: bool) -> None:
    if add:
        sdk.cr().create_instance_endpoint_acl_policy(
            cr_models.CreateInstanceEndpointAclPolicyRequest(
                instance_id="cri-demo", endpoint_type="internet", entry=entry, comment="by hand"
            )
        )
    else:
        sdk.cr().delete_instance_endpoint_acl_policy(
            cr_models.DeleteInstanceEndpointAclPolicyRequest(
                instance_id="cri-demo", endpoint_type="internet", entry=entry
            )
        )


def role_step(creds: dict[str, Any], spec: DeploySpec = SPEC) -> Any:
    return inspect_pull_role(creds["registry"], spec, app_uid=APP_UID, registry_uid=REGISTRY_UID)


def policy_step(creds: dict[str, Any], spec: DeploySpec = SPEC) -> Any:
    return inspect_pull_policy(
        creds["registry"],
        spec,
        app_uid=APP_UID,
        registry_uid=REGISTRY_UID,
        instance_id="cri-demo" if spec.image.ref.edition == "enterprise" else None,
    )


def whitelist_step(creds: dict[str, Any], spec: DeploySpec = SPEC, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "instance_id": "cri-demo" if spec.image.ref.edition == "enterprise" else None,
        "egress_ips": (EGRESS_IP,),
        "vpc_id": APP_VPC,
        **kw,
    }
    return inspect_whitelist(creds["registry"], spec, **args)


def actions(state: Any) -> list[str]:
    return [row.action for row in state.rows]


# -- image ---------------------------------------------------------------------------------------


def test_image_resolves_instance_repository_and_digest(
    creds: dict[str, Any], admin: SandboxAdmin
) -> None:
    state = inspect_image(creds["registry"], SPEC)
    assert (state.instance_id, state.digest, actions(state)) == ("cri-demo", "sha256:bbbb", [OK])
    assert state.repo_id and state.repo_id.startswith("crr-")
    assert state.rows[0].now == "exists (sha256:bbbb)"
    assert write_count(admin) == 0


def test_image_instance_found_by_domain_name(creds: dict[str, Any]) -> None:
    state = inspect_image(creds["registry"], make_spec(image={"instance_id": None}))
    assert (state.instance_id, actions(state)) == ("cri-demo", [OK])
    assert "cri-demo" in state.rows[0].reason


def test_image_instance_of_another_domain_is_blocked(creds: dict[str, Any]) -> None:
    url = "other-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.1"
    state = inspect_image(creds["registry"], make_spec(image={"url": url}))
    assert actions(state) == [BLOCKED]
    assert "AcrInstanceId is not the image's instance" in state.rows[0].reason
    assert "'demo'" in state.rows[0].reason and "'other'" in state.rows[0].reason


def test_image_unknown_instance_is_blocked(creds: dict[str, Any]) -> None:
    state = inspect_image(creds["registry"], make_spec(image={"instance_id": "cri-nope"}))
    assert actions(state) == [BLOCKED]
    assert "set image.instance_id: cri-demo" in state.rows[0].reason


def test_image_missing_tag_names_the_newest_tags(creds: dict[str, Any]) -> None:
    url = "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:9.9"
    state = inspect_image(creds["registry"], make_spec(image={"url": url}))
    assert actions(state) == [BLOCKED] and state.digest is None
    assert state.rows[0].now == "tag missing"
    assert "newest tags: 1.1, 1.0" in state.rows[0].reason


def test_an_acr_failure_in_a_200_body_is_the_error_of_its_code(sdk: SdkFactory) -> None:
    """ACR's HTTP 200 with `IsSuccess: false` raises the same CloudError an error status would."""
    client = sdk.cr()
    request = cr_models.GetInstanceRequest(instance_id="cri-nope")
    assert client.get_instance(request).body.is_success is False  # the SDK sees a success
    with pytest.raises(CloudError) as failed:
        call("cr:GetInstance", client.get_instance, request)
    assert (failed.value.code, failed.value.status) == ("INSTANCE_NOT_EXIST", 200)


def test_image_tag_is_read_from_the_listing_when_get_repo_tag_fails(
    creds: dict[str, Any], admin: SandboxAdmin
) -> None:
    """GetRepoTag refused with any code: the tag list says whether the tag is there."""
    admin.set_faults({"action": "GetRepoTag", "error": "InvalidParameter", "status": 400})
    state = inspect_image(creds["registry"], SPEC)
    assert (state.digest, actions(state)) == ("sha256:bbbb", [OK])
    assert state.rows[0].now == "exists (sha256:bbbb)"


def test_image_missing_repository_names_the_namespace_repositories(
    creds: dict[str, Any],
) -> None:
    url = "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/nope:1.0"
    state = inspect_image(creds["registry"], make_spec(image={"url": url}))
    assert actions(state) == [BLOCKED]
    assert "shop/web, shop/worker" in state.rows[0].reason


def test_image_personal_edition_is_not_checked(creds: dict[str, Any], admin: SandboxAdmin) -> None:
    state = inspect_image(
        creds["registry"], make_spec(image={"url": PERSONAL_URL, "instance_id": None})
    )
    assert (state.edition, state.instance_id, actions(state)) == ("personal", None, [OK])
    assert state.rows[0].now == "not checked (Personal Edition)"
    assert admin.requests() == []


def test_image_in_another_region_works_over_the_public_domain_only(
    creds: dict[str, Any],
) -> None:
    url = "demo-registry.cn-shanghai.cr.aliyuncs.com/shop/web:1.1"
    state = inspect_image(creds["registry"], make_spec(image={"url": url}))
    assert actions(state) == [OK, OK]
    assert "public domain only" in state.rows[1].reason


# -- role ----------------------------------------------------------------------------------------


def test_role_fresh_world_create_then_nothing(creds: dict[str, Any], admin: SandboxAdmin) -> None:
    state = role_step(creds)
    assert (state.action, actions(state)) == ("create", ["create"])
    assert state.role_arn == f"acs:ram::{REGISTRY_UID}:role/{ROLE}"
    changes = apply_pull_role(creds["registry"], state)
    assert changes == [Change("B", "ram.role", ROLE, "created", state.role_arn)]
    ram = creds["registry"].get_client("ram")
    role = ram.get_role(ram_models.GetRoleRequest(role_name=ROLE)).body.role
    assert ram_policy.same_document(
        ram_policy.parse(role.assume_role_policy_document), ram_policy.sae_trust_policy(APP_UID)
    )
    assert role.description == (
        f"SAE image pull for shop-web (account {APP_UID}); managed by sae-crossdeploy"
    )
    again = role_step(creds)
    assert actions(again) == [OK]
    before = write_count(admin)
    assert apply_pull_role(creds["registry"], again) == []
    assert write_count(admin) == before


def test_role_merge_keeps_other_statements(
    creds: dict[str, Any], sdk: SdkFactory, admin: SandboxAdmin
) -> None:
    make_role(sdk, OTHER_TRUST)
    start = registry_world(admin)
    state = role_step(creds)
    assert (state.action, actions(state)) == ("merge", ["update trust"])
    changes = apply_pull_role(creds["registry"], state)
    assert [c.action for c in changes] == ["trust-merged"]
    trust = trust_of(sdk)
    assert ram_policy.statements(trust)[0] == OTHER_TRUST["Statement"][0]
    assert ram_policy.allowed_principals(trust) == {
        ("RAM", "acs:ram::3333333333333333:root"),
        ("Service", SAE),
    }
    assert actions(role_step(creds)) == [OK]
    remove_pull_role(creds["registry"], changes)
    assert ram_policy.same_document(trust_of(sdk), OTHER_TRUST)
    assert registry_world(admin) == start


def test_role_exclusive_trust_replaces_and_teardown_restores(
    creds: dict[str, Any], sdk: SdkFactory, admin: SandboxAdmin
) -> None:
    make_role(sdk, OTHER_TRUST)
    start = registry_world(admin)
    spec = make_spec(access={"exclusive_trust": True})
    state = role_step(creds, spec)
    assert (state.action, actions(state)) == ("replace", ["update trust"])
    assert "loses the right" in state.rows[0].reason
    changes = apply_pull_role(creds["registry"], state)
    assert ram_policy.same_document(trust_of(sdk), ram_policy.sae_trust_policy(APP_UID))
    assert actions(role_step(creds, spec)) == [OK]
    remove_pull_role(creds["registry"], changes)
    assert registry_world(admin) == start


def test_role_deny_on_sae_is_blocked(
    creds: dict[str, Any], sdk: SdkFactory, admin: SandboxAdmin
) -> None:
    deny = {"Effect": "Deny", "Action": "sts:AssumeRole", "Principal": {"Service": [SAE]}}
    make_role(sdk, {"Version": "1", "Statement": [*OTHER_TRUST["Statement"], deny]})
    state = role_step(creds)
    assert (state.action, actions(state)) == ("blocked", [BLOCKED])
    assert "Deny" in state.rows[0].reason and "exclusive_trust" in state.rows[0].reason
    before = write_count(admin)
    assert apply_pull_role(creds["registry"], state) == []
    assert write_count(admin) == before
    exclusive = role_step(creds, make_spec(access={"exclusive_trust": True}))
    assert exclusive.action == "replace"


def test_role_create_converges_after_a_lost_reply(
    creds: dict[str, Any], admin: SandboxAdmin
) -> None:
    admin.set_faults({"action": "CreateRole", "lose_response": True, "times": 1})
    state = role_step(creds)
    changes = apply_pull_role(creds["registry"], state)
    assert changes == [Change("B", "ram.role", ROLE, "created", state.role_arn)]
    creates = [r for r in admin.requests() if r["action"] == "CreateRole"]
    # The first create committed but its reply was lost (503); `call` retried, RAM said the role
    # exists, and apply re-read it and found its own role.
    assert [(r["status"], r["code"]) for r in creates][1:] == [(409, "EntityAlreadyExists.Role")]
    assert creates[0]["status"] == 503
    assert list(admin.state()["registry"]["global"]["ram_role"]) == [ROLE]
    assert actions(role_step(creds)) == [OK]


def test_role_created_by_someone_else_meanwhile_is_merged_not_claimed(
    creds: dict[str, Any], sdk: SdkFactory
) -> None:
    state = role_step(creds)
    make_role(sdk, OTHER_TRUST)
    changes = apply_pull_role(creds["registry"], state)
    assert [c.action for c in changes] == ["trust-merged"]
    assert ram_policy.allowed_principals(trust_of(sdk)) == {
        ("RAM", "acs:ram::3333333333333333:root"),
        ("Service", SAE),
    }


def test_role_remove_deletes_only_what_it_created_and_is_idempotent(
    creds: dict[str, Any], admin: SandboxAdmin
) -> None:
    start = registry_world(admin)
    changes = apply_pull_role(creds["registry"], role_step(creds))
    assert [c.action for c in remove_pull_role(creds["registry"], changes)] == ["deleted"]
    assert registry_world(admin) == start
    before = write_count(admin)
    assert remove_pull_role(creds["registry"], changes) == []
    # Deleting an already-deleted role is one harmless 404; nothing changes.
    assert registry_world(admin) == start
    assert write_count(admin) - before <= 1


# -- trust merge: never widens -------------------------------------------------------------------

_PRINCIPALS = {
    "RAM": [
        "acs:ram::3333333333333333:root",
        f"acs:ram::{APP_UID}:root",
        f"acs:ram::{REGISTRY_UID}:role/admin",
        "*",
    ],
    "Service": [
        "ecs.aliyuncs.com",
        "sae.aliyuncs.com",
        "3333333333333333@sae.aliyuncs.com",
        SAE,
        SAE.upper(),
    ],
}


@st.composite
def trust_statements(draw: st.DrawFn) -> dict[str, Any]:
    kinds = draw(
        st.lists(st.sampled_from(sorted(_PRINCIPALS)), min_size=1, max_size=2, unique=True)
    )
    principal: dict[str, Any] = {}
    for kind in kinds:
        values = draw(st.lists(st.sampled_from(_PRINCIPALS[kind]), min_size=1, max_size=3))
        principal[kind] = values[0] if len(values) == 1 and draw(st.booleans()) else values
    statement: dict[str, Any] = {
        "Effect": draw(st.sampled_from(["Allow", "Allow", "Deny"])),
        "Action": draw(st.sampled_from(["sts:AssumeRole", "sts:*", "*", ["sts:AssumeRole"]])),
        "Principal": principal,
    }
    if draw(st.integers(0, 4)) == 0:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": "abc"}}
    return statement


@st.composite
def trust_documents(draw: st.DrawFn) -> ram_policy.Document:
    items = draw(st.lists(trust_statements(), min_size=1, max_size=4))
    single = len(items) == 1 and draw(st.booleans())
    return {"Version": "1", "Statement": items[0] if single else items}


@settings(max_examples=300)
@given(document=trust_documents())
def test_merge_adds_exactly_the_sae_principal(document: ram_policy.Document) -> None:
    before = copy.deepcopy(document)
    merged = ram_policy.merge_sae_trust(document, APP_UID)
    assert document == before
    assert ram_policy.statements(merged)[:-1] == ram_policy.statements(document)
    assert ram_policy.allowed_principals(merged) == ram_policy.allowed_principals(document) | {
        ("Service", SAE)
    }
    if any("Condition" in s for s in ram_policy.statements(document)):
        return  # conditions are judged worst-case here; the sandbox evaluates them
    verdict = ram_policy.sae_trust_verdict(document, APP_UID)
    sae = SandboxPrincipal(APP_UID, "service", "sae.aliyuncs.com")

    def judge(doc: ram_policy.Document) -> Decision:
        return trust_allows(
            PolicyDocument.parse(ram_policy.to_text(doc), "trust"), sae, REGISTRY_UID
        )

    expected = {"allowed": Decision.ALLOW, "denied": Decision.DENY}
    assert judge(document) is expected.get(verdict, Decision.IMPLICIT_DENY)
    assert judge(merged) is (Decision.DENY if verdict == "denied" else Decision.ALLOW)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=trust_documents())
def test_role_step_never_widens_a_real_trust_policy(
    creds: dict[str, Any], sdk: SdkFactory, document: ram_policy.Document
) -> None:
    name = f"prop-{uuid.uuid4().hex[:12]}"
    make_role(sdk, document, name)
    state = role_step(creds, make_spec(access={"role_name": name}))
    apply_pull_role(creds["registry"], state)
    after = trust_of(sdk, name)
    if state.action == "merge":
        assert ram_policy.allowed_principals(after) == ram_policy.allowed_principals(document) | {
            ("Service", SAE)
        }
        assert ram_policy.statements(after)[:-1] == ram_policy.statements(document)
    else:
        assert state.action in ("none", "blocked")
        assert ram_policy.same_document(after, document)
    sdk.ram().delete_role(ram_models.DeleteRoleRequest(role_name=name))


# -- policy --------------------------------------------------------------------------------------


def test_policy_fresh_world_create_attach_then_nothing(
    creds: dict[str, Any], admin: SandboxAdmin, sdk: SdkFactory
) -> None:
    apply_pull_role(creds["registry"], role_step(creds))
    state = policy_step(creds)
    assert actions(state) == ["create + attach"]
    changes = apply_pull_policy(creds["registry"], state)
    assert [(c.resource_type, c.action) for c in changes] == [
        ("ram.policy", "created"),
        ("ram.attachment", "attached"),
    ]
    body = (
        sdk.ram()
        .get_policy(ram_models.GetPolicyRequest(policy_name=ROLE, policy_type="Custom"))
        .body
    )
    document = ram_policy.parse(body.default_policy_version.policy_document)
    base = f"acs:cr:*:{REGISTRY_UID}"
    assert ram_policy.statements(document) == [
        {"Effect": "Allow", "Action": ["cr:GetAuthorizationToken"], "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": ["cr:ListInstanceEndpoint"],
            "Resource": f"{base}:instance/cri-demo",
        },
        {
            "Effect": "Allow",
            "Action": ["cr:PullRepository", "cr:GetRepository", "cr:ListRepositoryTag"],
            "Resource": f"{base}:repository/cri-demo/shop/web",
        },
    ]
    assert "managed by sae-crossdeploy" in body.policy.description
    again = policy_step(creds)
    assert actions(again) == [OK]
    before = write_count(admin)
    assert apply_pull_policy(creds["registry"], again) == []
    assert write_count(admin) == before


def _custom_policy(sdk: SdkFactory, *documents: str, attach: bool = False) -> None:
    ram = sdk.ram()
    ram.create_policy(
        ram_models.CreatePolicyRequest(policy_name=ROLE, policy_document=documents[0])
    )
    for document in documents[1:]:
        ram.create_policy_version(
            ram_models.CreatePolicyVersionRequest(
                policy_name=ROLE, policy_document=document, set_as_default=True
            )
        )
    if attach:
        ram.attach_policy_to_role(
            ram_models.AttachPolicyToRoleRequest(
                policy_type="Custom", policy_name=ROLE, role_name=ROLE
            )
        )


def _versions(sdk: SdkFactory) -> list[tuple[str, bool]]:
    body = (
        sdk.ram()
        .list_policy_versions(
            ram_models.ListPolicyVersionsRequest(policy_name=ROLE, policy_type="Custom")
        )
        .body
    )
    return sorted(
        (v.version_id, bool(v.is_default_version)) for v in body.policy_versions.policy_version
    )


def _wide(n: int) -> str:
    return json.dumps(
        {
            "Version": "1",
            "Statement": [{"Effect": "Allow", "Action": f"cr:Get{n}", "Resource": "*"}],
        }
    )


def test_policy_drift_gets_a_new_default_version_and_teardown_restores(
    creds: dict[str, Any], sdk: SdkFactory, admin: SandboxAdmin
) -> None:
    make_role(sdk, ram_policy.sae_trust_policy(APP_UID))
    _custom_policy(sdk, _wide(1), attach=True)
    start = registry_world(admin)
    state = policy_step(creds)
    assert actions(state) == ["new version"]
    assert state.rows[0].now == "v1 grants something else, attached"
    changes = apply_pull_policy(creds["registry"], state)
    assert changes == [Change("B", "ram.policy-version", f"{ROLE}/v2", "created", "v1")]
    assert _versions(sdk) == [("v1", False), ("v2", True)]
    assert actions(policy_step(creds)) == [OK]
    remove_pull_policy(creds["registry"], changes)
    assert registry_world(admin) == start


def test_policy_written_before_issue_13_gets_a_new_version_that_grants_the_token(
    creds: dict[str, Any], sdk: SdkFactory, admin: SandboxAdmin
) -> None:
    """The policy an earlier version of this tool created (the token scoped to the instance) is
    drift: the plan says why and how it is fixed, a re-deploy writes a new default version with
    the token on `*`, and teardown still removes the whole policy it created."""
    apply_pull_role(creds["registry"], role_step(creds))
    start = registry_world(admin)
    old = replace(policy_step(creds), document=instance_scoped_pull_policy())
    created = apply_pull_policy(creds["registry"], old)
    assert [(c.resource_type, c.action) for c in created] == [
        ("ram.policy", "created"),
        ("ram.attachment", "attached"),
    ]
    state = policy_step(creds)
    assert actions(state) == ["new version"]
    (row,) = state.rows
    assert row.now == "v1 grants something else, attached"
    assert 'does not allow cr:GetAuthorizationToken on "Resource": "*"' in row.reason
    assert "Fix: deploy again" in row.reason
    upgraded = apply_pull_policy(creds["registry"], state)
    assert upgraded == [Change("B", "ram.policy-version", f"{ROLE}/v2", "created", "v1")]
    assert _versions(sdk) == [("v1", False), ("v2", True)]
    current = sdk.ram().get_policy(
        ram_models.GetPolicyRequest(policy_name=ROLE, policy_type="Custom")
    )
    document = ram_policy.parse(current.body.default_policy_version.policy_document)
    assert ram_policy.grants_login(document)
    assert actions(policy_step(creds)) == [OK]
    remove_pull_policy(creds["registry"], created + upgraded)
    assert registry_world(admin) == start


def test_policy_at_five_versions_rotates_the_oldest(creds: dict[str, Any], sdk: SdkFactory) -> None:
    make_role(sdk, ram_policy.sae_trust_policy(APP_UID))
    _custom_policy(sdk, *(_wide(n) for n in range(1, 6)))
    assert len(_versions(sdk)) == 5
    state = policy_step(creds)
    assert actions(state) == ["new version + attach"]
    apply_pull_policy(creds["registry"], state)
    assert _versions(sdk) == [
        ("v2", False),
        ("v3", False),
        ("v4", False),
        ("v5", False),
        ("v6", True),
    ]
    assert actions(policy_step(creds)) == [OK]


def test_policy_only_attach(creds: dict[str, Any], sdk: SdkFactory) -> None:
    make_role(sdk, ram_policy.sae_trust_policy(APP_UID))
    wanted = ram_policy.pull_policy(
        REGISTRY_UID, instance_id="cri-demo", namespace="shop", repo="web"
    )
    # The same document written differently (order, spacing, one-vs-list) is the same policy.
    reordered = {
        "Statement": [
            {**s, "Action": list(reversed(s["Action"])), "Resource": [s["Resource"]]}
            for s in reversed(wanted["Statement"])
        ],
        "Version": "1",
    }
    _custom_policy(sdk, json.dumps(reordered, indent=2))
    assert actions(policy_step(creds)) == ["attach"]


def test_policy_created_by_someone_else_meanwhile_is_repaired_not_claimed(
    creds: dict[str, Any], sdk: SdkFactory
) -> None:
    apply_pull_role(creds["registry"], role_step(creds))
    state = policy_step(creds)
    _custom_policy(sdk, _wide(1))
    changes = apply_pull_policy(creds["registry"], state)
    assert [(c.resource_type, c.action) for c in changes] == [
        ("ram.policy-version", "created"),
        ("ram.attachment", "attached"),
    ]
    assert actions(policy_step(creds)) == [OK]


def test_pull_policy_grants_the_pull_and_nothing_else() -> None:
    document = ram_policy.pull_policy(
        REGISTRY_UID, instance_id="cri-demo", namespace="shop", repo="web"
    )
    base = f"acs:cr:cn-hangzhou:{REGISTRY_UID}"
    decide = ram_policy.permission_decision
    assert decide([document], "cr:GetAuthorizationToken", "*") == "allow"
    assert ram_policy.grants_login(document)
    assert not ram_policy.grants_login(ram_policy.parse(instance_scoped_pull_policy()))
    assert decide([document], "cr:ListInstanceEndpoint", f"{base}:instance/cri-demo") == "allow"
    assert decide([document], "cr:ListInstanceEndpoint", f"{base}:instance/cri-other") == (
        "implicit-deny"
    )
    assert (
        decide([document], "cr:PullRepository", f"{base}:repository/cri-demo/shop/web") == "allow"
    )
    assert decide([document], "cr:PullRepository", f"{base}:repository/cri-demo/shop/worker") == (
        "implicit-deny"
    )
    assert decide([document], "cr:PushRepository", f"{base}:repository/cri-demo/shop/web") == (
        "implicit-deny"
    )
    deny = {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "cr:*", "Resource": "*"}]}
    assert decide(
        [document, deny], "cr:PullRepository", f"{base}:repository/cri-demo/shop/web"
    ) == ("deny")


@pytest.mark.parametrize(
    ("action", "code"),
    [
        ("CreatePolicy", "EntityAlreadyExists.Policy"),
        ("AttachPolicyToRole", "EntityAlreadyExists.Role.Policy"),
    ],
)
def test_policy_converges_after_a_lost_reply(
    creds: dict[str, Any], admin: SandboxAdmin, action: str, code: str
) -> None:
    apply_pull_role(creds["registry"], role_step(creds))
    admin.set_faults({"action": action, "lose_response": True, "times": 1})
    changes = apply_pull_policy(creds["registry"], policy_step(creds))
    assert [(c.resource_type, c.action) for c in changes] == [
        ("ram.policy", "created"),
        ("ram.attachment", "attached"),
    ]
    assert [r["code"] for r in admin.requests() if r["action"] == action][-1] == code
    assert actions(policy_step(creds)) == [OK]


# -- whitelist -----------------------------------------------------------------------------------


def test_whitelist_adds_the_egress_ip_then_nothing(
    creds: dict[str, Any], sdk: SdkFactory, admin: SandboxAdmin
) -> None:
    start = registry_world(admin)
    state = whitelist_step(creds)
    assert actions(state) == ["add 47.96.10.20/32"]
    assert state.rows[0].now == "127.0.0.1/32"
    changes = apply_whitelist(creds["registry"], state)
    assert changes == [
        Change(
            "B",
            "cr.acl-entry",
            "cri-demo:internet:47.96.10.20/32",
            "added",
            "sae-crossdeploy:shop-web",
        )
    ]
    assert internet_acl(sdk) == (
        True,
        {
            "127.0.0.1/32": "added when the internet endpoint was enabled",
            "47.96.10.20/32": "sae-crossdeploy:shop-web",
        },
    )
    again = whitelist_step(creds)
    assert actions(again) == [OK]
    before = write_count(admin)
    assert apply_whitelist(creds["registry"], again) == []
    assert write_count(admin) == before
    remove_whitelist(creds["registry"], changes)
    assert registry_world(admin) == start


def endpoint_status(sdk: SdkFactory) -> str:
    request = cr_models.GetInstanceEndpointRequest(
        instance_id="cri-demo", endpoint_type="internet", module_name="Registry"
    )
    return str(sdk.cr().get_instance_endpoint(request).body.status)


def settled(sdk: SdkFactory) -> None:
    """Wait (briefly) until a switch of cri-demo's internet endpoint has settled."""
    deadline = time.monotonic() + 10
    while endpoint_status(sdk) != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_whitelist_enables_a_disabled_endpoint_and_teardown_restores(
    creds: dict[str, Any], sdk: SdkFactory, admin: SandboxAdmin
) -> None:
    """Switching the endpoint on or off takes the world's transition time, and ACL writes before
    RUNNING are dropped: apply and teardown wait for RUNNING and read every write back."""
    admin.set_timing(endpoint_transition_seconds=0)
    acl(sdk, "127.0.0.1/32", add=False)
    set_endpoint(sdk, enable=False)
    start = registry_world(admin)
    admin.set_timing(endpoint_transition_seconds=1.0)
    state = whitelist_step(creds)
    assert actions(state) == ["enable + add 47.96.10.20/32"]
    started = time.monotonic()
    changes = apply_whitelist(creds["registry"], state)
    assert time.monotonic() - started >= 1.0
    assert [(c.resource_type, c.resource_id, c.action) for c in changes] == [
        ("cr.internet-endpoint", "cri-demo", "enabled"),
        ("cr.acl-entry", "cri-demo:internet:127.0.0.1/32", "added"),
        ("cr.acl-entry", "cri-demo:internet:47.96.10.20/32", "added"),
    ]
    enabled, entries = internet_acl(sdk)
    assert enabled and set(entries) == {"127.0.0.1/32", "47.96.10.20/32"}
    assert actions(whitelist_step(creds)) == [OK]
    remove_whitelist(creds["registry"], changes)
    assert endpoint_status(sdk) == "RUNNING"
    assert registry_world(admin) == start
    before = write_count(admin)
    assert remove_whitelist(creds["registry"], changes) == []
    assert write_count(admin) == before


def test_whitelist_retries_slb_service_error(
    creds: dict[str, Any], sdk: SdkFactory, admin: SandboxAdmin
) -> None:
    """CreateInstanceEndpointAclPolicy's documented 400 SLB_SERVICE_ERROR is written again (as
    Terraform's provider does) until the entry shows."""
    admin.set_faults(
        {
            "action": "CreateInstanceEndpointAclPolicy",
            "error": "SLB_SERVICE_ERROR",
            "status": 400,
            "times": 2,
        }
    )
    fast = EndpointWait(initial_seconds=0.05, max_seconds=0.1)
    changes = apply_whitelist(creds["registry"], whitelist_step(creds), fast)
    assert [c.resource_id for c in changes] == ["cri-demo:internet:47.96.10.20/32"]
    writes = [r for r in admin.requests() if r["action"] == "CreateInstanceEndpointAclPolicy"]
    assert [r["code"] for r in writes] == ["SLB_SERVICE_ERROR", "SLB_SERVICE_ERROR", None]
    assert "47.96.10.20/32" in internet_acl(sdk)[1]


def test_whitelist_waits_for_an_endpoint_someone_switched_on(
    creds: dict[str, Any], sdk: SdkFactory, admin: SandboxAdmin
) -> None:
    """On but still CREATING: the plan says so and apply waits until RUNNING, even with nothing
    to add; a wait that runs out is an error, not a silent success."""
    acl(sdk, "47.96.0.0/16", add=True)
    admin.set_timing(endpoint_transition_seconds=0)
    set_endpoint(sdk, enable=False)
    admin.set_timing(endpoint_transition_seconds=1.0)
    set_endpoint(sdk, enable=True)
    state = whitelist_step(creds)
    [row] = state.rows
    assert (row.action, state.settling) == (OK, "CREATING")
    assert row.now.startswith("endpoint CREATING; ")
    assert "not RUNNING yet; the run waits" in row.reason
    fast = EndpointWait(initial_seconds=0.05, max_seconds=0.2)
    assert apply_whitelist(creds["registry"], state, fast) == []
    assert endpoint_status(sdk) == "RUNNING"
    assert admin.writes()[-1]["action"] == "UpdateInstanceEndpointStatus"

    admin.set_timing(endpoint_transition_seconds=30)
    set_endpoint(sdk, enable=False)
    with pytest.raises(EndpointNotReadyError, match="stayed CREATING for 0s"):
        apply_whitelist(
            creds["registry"],
            whitelist_step(creds),
            EndpointWait(timeout_seconds=0.3, initial_seconds=0.05),
        )


def test_whitelist_only_enables_when_the_acl_already_admits(
    creds: dict[str, Any], sdk: SdkFactory
) -> None:
    acl(sdk, "47.96.0.0/16", add=True)
    set_endpoint(sdk, enable=False)
    state = whitelist_step(creds)
    assert actions(state) == ["enable"]
    changes = apply_whitelist(creds["registry"], state)
    assert [c.action for c in changes] == ["enabled"]


def test_whitelist_containing_entry_counts(
    creds: dict[str, Any], sdk: SdkFactory, admin: SandboxAdmin
) -> None:
    acl(sdk, "47.96.0.0/16", add=True)
    state = whitelist_step(creds)
    assert actions(state) == [OK]
    assert "inside 47.96.0.0/16" in state.rows[0].reason
    before = write_count(admin)
    assert apply_whitelist(creds["registry"], state) == []
    assert write_count(admin) == before


def test_whitelist_empty_acl_is_open_and_left_alone(creds: dict[str, Any], sdk: SdkFactory) -> None:
    acl(sdk, "127.0.0.1/32", add=False)
    state = whitelist_step(creds)
    assert actions(state) == [OK]
    assert "whole Internet" in state.rows[0].reason


def test_whitelist_admits_every_eip_of_the_snat_entry(
    creds: dict[str, Any], sdk: SdkFactory, admin: SandboxAdmin
) -> None:
    """An SNAT entry of several EIPs: pulls leave from any, so each one is planned and added;
    one already inside an entry is left alone."""
    start = registry_world(admin)
    pool = (EGRESS_IP, "47.96.10.21", "8.8.4.4")
    acl(sdk, "8.8.0.0/16", add=True)
    state = whitelist_step(creds, egress_ips=pool)
    [row] = state.rows
    assert row.action == "add 47.96.10.20/32 + add 47.96.10.21/32"
    assert row.wanted == "+ 47.96.10.20/32, + 47.96.10.21/32, + 8.8.4.4/32"
    assert "holds 3 EIPs" in row.reason
    changes = apply_whitelist(creds["registry"], state)
    assert [c.resource_id for c in changes] == [
        "cri-demo:internet:47.96.10.20/32",
        "cri-demo:internet:47.96.10.21/32",
    ]
    again = whitelist_step(creds, egress_ips=pool)
    assert actions(again) == [OK]
    assert again.rows[0].wanted == "admits 47.96.10.20, 47.96.10.21, 8.8.4.4"
    assert again.rows[0].reason == "8.8.4.4 is inside 8.8.0.0/16."
    remove_whitelist(creds["registry"], changes)
    acl(sdk, "8.8.0.0/16", add=False)
    assert registry_world(admin) == start


def test_whitelist_none_is_skipped(creds: dict[str, Any], admin: SandboxAdmin) -> None:
    state = whitelist_step(creds, make_spec(network={"whitelist": "none"}))
    assert actions(state) == [SKIP]
    assert apply_whitelist(creds["registry"], state) == []
    assert admin.requests() == []


def test_whitelist_without_egress_is_blocked(creds: dict[str, Any]) -> None:
    state = whitelist_step(creds, egress_ips=())
    assert actions(state) == [BLOCKED]
    assert "network row" in state.rows[0].reason


def test_whitelist_vpc_cidr_on_the_public_domain_is_blocked(creds: dict[str, Any]) -> None:
    state = whitelist_step(creds, make_spec(network={"whitelist": "vpc-cidr"}))
    assert actions(state) == [BLOCKED]
    assert "network.whitelist: auto" in state.rows[0].reason


def test_whitelist_personal_edition_has_none(creds: dict[str, Any]) -> None:
    spec = make_spec(image={"url": PERSONAL_URL, "instance_id": None})
    state = whitelist_step(creds, spec)
    assert (actions(state), state.rows[0].now) == ([OK], "no whitelist (Personal Edition)")


def test_whitelist_vpc_domain_linked_vpc_is_ok(creds: dict[str, Any]) -> None:
    spec = make_spec(image={"url": VPC_URL})
    state = whitelist_step(creds, spec, vpc_id="vpc-reg")
    assert actions(state) == [OK]
    assert state.rows[0].now == "vpc-reg linked"


def test_whitelist_vpc_domain_unconnected_vpc_is_blocked(creds: dict[str, Any]) -> None:
    """Not shared with B, not linked, no CEN: the fix is VPC sharing then a link (or CEN)."""
    state = whitelist_step(creds, make_spec(image={"url": VPC_URL}))
    [row] = state.rows
    assert (row.action, row.now) == (BLOCKED, "vpc-app neither linked nor CEN-connected")
    assert "(linked: vpc-reg (RUNNING))" in row.reason
    assert "share a vSwitch of vpc-app with account B (VPC sharing" in row.reason
    assert "The run does not link VPCs itself." in row.reason
    assert "ACL" not in row.reason


def test_whitelist_vpc_domain_over_cen_names_the_dns_step(creds: dict[str, Any]) -> None:
    """CEN to a RUNNING linked VPC is the path; the -vpc name must still resolve in vpc-app,
    which no API in reach shows, so the row names the step and the state keeps it."""
    state = whitelist_step(creds, make_spec(image={"url": VPC_URL}), cen_connected_vpcs=["vpc-reg"])
    [row] = state.rows
    assert (row.action, row.now) == (OK, "vpc-app via CEN to vpc-reg")
    assert state.dns_step == row.reason
    assert re.search(
        r"in PrivateZone, associate vpc-app with a zone "
        r"demo-registry-vpc\.cn-hangzhou\.cr\.aliyuncs\.com whose A record is 192\.168\.1\.\d+ "
        r"\(the endpoint's address in vpc-reg\)",
        row.reason,
    )


@pytest.mark.parametrize(
    ("code", "status"), [("InvalidVpcID.NotFound", 404), ("Forbidden.VpcNotFound", 400)]
)
def test_whitelist_cen_check_reads_a_vanished_vpc_as_unconnected(
    creds: dict[str, Any], admin: SandboxAdmin, code: str, status: int
) -> None:
    """Both documented codes for a VPC that is not there mean "not connected", not a crash."""
    admin.set_faults({"action": "DescribeVpcAttribute", "error": code, "status": status})
    spec = make_spec(image={"url": VPC_URL})
    state = whitelist_step(creds, spec, app_cen_ids=["cen-app"])
    assert actions(state) == [BLOCKED]
    assert state.rows[0].now == "vpc-app neither linked nor CEN-connected"
    assert any(r["code"] == code for r in admin.requests())


@pytest.fixture(scope="module")
def cen_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """The demo world with vpc-app CEN-connected to vpc-reg (and its DNS step done)."""
    path = tmp_path_factory.mktemp("cen-world") / "world.yaml"
    path.write_text(yaml.safe_dump(variant(connect_cen)))
    with SandboxProcess(world=path) as process:
        yield process


def test_whitelist_vpc_domain_cen_found_from_the_app_vpcs_cen(cen_sandbox: SandboxProcess) -> None:
    registry = sandbox_credentials(cen_sandbox.url, "registry")
    app = SdkFactory(cen_sandbox.endpoint).vpc("app")
    request = vpc_models.DescribeVpcAttributeRequest(region_id="cn-hangzhou", vpc_id=APP_VPC)
    cens = app.describe_vpc_attribute(request).body.associated_cens.associated_cen
    state = inspect_whitelist(
        registry,
        make_spec(image={"url": VPC_URL}),
        instance_id="cri-demo",
        egress_ips=(),
        vpc_id=APP_VPC,
        app_cen_ids=[c.cen_id for c in cens],
    )
    assert actions(state) == [OK]
    assert state.rows[0].now == "vpc-app via CEN to vpc-reg"
    assert "associate vpc-app with a zone" in state.dns_step


@pytest.fixture(scope="module")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """The demo world (fast change orders) with vsw-app-h of vpc-app shared with the registry
    account (VPC sharing)."""
    data = demo_world_data(**FAST_TIMING)
    data["regions"]["cn-hangzhou"]["vpcs"][0]["vswitches"][0]["shared_with"] = ["registry"]
    path = tmp_path_factory.mktemp("shared-world") / "world.yaml"
    path.write_text(yaml.safe_dump(data))
    with SandboxProcess(world=path) as process:
        yield process


def test_a_vpc_shared_with_b_is_linked_and_counts_once_running(
    shared_sandbox: SandboxProcess,
) -> None:
    """vpc-app shared with B: the plan names the exact link B can make; made, the link is
    CREATING and the row stays BLOCKED; RUNNING, it is OK and SAE pulls over the -vpc domain."""
    admin = SandboxAdmin(shared_sandbox.url)
    admin.reset()
    sdk = SdkFactory(shared_sandbox.endpoint)
    creds = {a: sandbox_credentials(shared_sandbox.url, a) for a in ("app", "registry")}
    spec = make_spec(image={"url": VPC_URL})
    [row] = whitelist_step(creds, spec).rows
    assert row.action == BLOCKED
    assert "vpc-app belongs to account A and is shared with account B (vsw-app-h)" in row.reason
    assert (
        "in account B link vpc-app to the VPC endpoint of cri-demo through vsw-app-h (ACR "
        "console: instance > Access Control > VPC > Add VPC; or CreateInstanceVpcEndpointLinkedVpc "
        "with VpcId vpc-app, VswitchId vsw-app-h) and wait until its Status is RUNNING"
    ) in row.reason

    admin.set_timing(endpoint_transition_seconds=1.0)
    sdk.cr().create_instance_vpc_endpoint_linked_vpc(
        cr_models.CreateInstanceVpcEndpointLinkedVpcRequest(
            instance_id="cri-demo", vpc_id="vpc-app", vswitch_id="vsw-app-h"
        )
    )
    [creating] = whitelist_step(creds, spec).rows
    assert (creating.action, creating.now) == (BLOCKED, "vpc-app linked, CREATING")
    assert "only once the link's Status is RUNNING" in creating.reason
    time.sleep(1.1)
    [running] = whitelist_step(creds, spec).rows
    assert (running.action, running.now) == (OK, "vpc-app linked")

    role_arn = ready_cross_account(sdk)
    _, order = create_app(sdk, role_arn, image_url=VPC_URL)
    assert wait_for(sdk, order).status == 2
    admin.close()


# -- teardown and the proof ----------------------------------------------------------------------


def test_teardown_of_everything_gives_back_the_starting_world(
    creds: dict[str, Any], admin: SandboxAdmin
) -> None:
    start = registry_world(admin)
    registry = creds["registry"]
    changes = apply_pull_role(registry, role_step(creds))
    changes += apply_pull_policy(registry, policy_step(creds))
    changes += apply_whitelist(registry, whitelist_step(creds))
    assert registry_world(admin) != start
    undone = remove_pull_policy(registry, changes)
    undone += remove_pull_role(registry, changes)
    undone += remove_whitelist(registry, changes)
    assert [(c.resource_type, c.action) for c in undone] == [
        ("ram.attachment", "detached"),
        ("ram.policy", "deleted"),
        ("ram.role", "deleted"),
        ("cr.acl-entry", "removed"),
    ]
    assert registry_world(admin) == start


def test_the_registry_steps_run_as_prefect_tasks_and_let_sae_pull(
    prefect_harness: None, fast_creds: dict[str, Any], fast_sdk: SdkFactory
) -> None:
    from prefect import flow

    from tasks import image, pull_policy, pull_role, whitelist
    from tasks.step import Accounts, Inspection

    registry = fast_creds["registry"]
    accounts = Accounts(fast_creds["app"], registry, APP_UID, REGISTRY_UID)

    @flow
    def account_b() -> list[Any]:
        found = Inspection({image.NAME: image.STEP.inspect_task(accounts, SPEC, Inspection())})
        role = pull_role.STEP.inspect_task(accounts, SPEC, found)
        policy = pull_policy.STEP.inspect_task(accounts, SPEC, found)
        admits = inspect_whitelist(
            registry,
            SPEC,
            instance_id=found.of(image.STEP).instance_id,
            egress_ips=(EGRESS_IP,),
            vpc_id=APP_VPC,
        )
        return [
            role,
            pull_role.STEP.apply_task(accounts, role),
            pull_policy.STEP.apply_task(accounts, policy),
            whitelist.STEP.apply_task(accounts, admits),
        ]

    role, *applied = account_b()
    assert [len(r.changes) for r in applied] == [1, 2, 1]
    secret = registry.access_key_secret.get_secret_value()
    assert secret not in repr([role, *applied])
    _, order = create_app(fast_sdk, role.role_arn)
    assert wait_for(fast_sdk, order).status == 2


def test_personal_edition_policy_scope_lets_sae_pull(
    fast_creds: dict[str, Any], fast_sdk: SdkFactory
) -> None:
    registry = fast_creds["registry"]
    spec = make_spec(image={"url": PERSONAL_URL, "instance_id": None})
    role = inspect_pull_role(registry, spec, app_uid=APP_UID, registry_uid=REGISTRY_UID)
    apply_pull_role(registry, role)
    policy = inspect_pull_policy(
        registry, spec, app_uid=APP_UID, registry_uid=REGISTRY_UID, instance_id=None
    )
    apply_pull_policy(registry, policy)
    _, order = create_app(fast_sdk, role.role_arn, image_url=PERSONAL_URL, acr_instance_id=None)
    assert wait_for(fast_sdk, order).status == 2
