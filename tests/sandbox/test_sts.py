"""STS through the official SDK: identity, AssumeRole allowed and refused, temporary keys."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_tea_openapi.exceptions import ClientException

from tests.support.clients import UIDS, SdkFactory
from tests.support.policies import trust
from tests.support.ram_setup import assume, make_role


def test_caller_identity_of_each_account(sdk: SdkFactory) -> None:
    for account, uid in UIDS.items():
        body = sdk.sts(account).get_caller_identity().body
        assert body.account_id == uid
        assert body.identity_type == "Account"
        assert body.arn == f"acs:ram::{uid}:root"
        assert body.request_id


def test_assume_role_across_accounts_acts_as_the_role(sdk: SdkFactory) -> None:
    arn = make_role(
        sdk, "deployer", trust(ram=[f"acs:ram::{UIDS['app']}:root"]), "AliyunRAMReadOnlyAccess"
    )
    body = assume(sdk, arn, duration_seconds=900)
    creds = body.credentials
    assert creds.access_key_id.startswith("STS.")
    assert creds.security_token and creds.access_key_secret
    assert body.assumed_role_user.arn == f"acs:ram::{UIDS['registry']}:role/deployer/tests"
    expires = time.mktime(time.strptime(creds.expiration, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert 800 < expires - time.time() <= 901

    key = (creds.access_key_id, creds.access_key_secret)
    who = sdk.sts(key=key, token=creds.security_token).get_caller_identity().body
    assert who.account_id == UIDS["registry"]
    assert who.identity_type == "AssumedRoleUser"
    assert who.role_id and who.principal_id.endswith(":tests")

    ram = sdk.ram(key=key, token=creds.security_token)
    assert (
        ram.get_role(ram_models.GetRoleRequest(role_name="deployer")).body.role.role_name
        == "deployer"
    )
    with pytest.raises(ClientException) as refused:
        ram.create_role(
            ram_models.CreateRoleRequest(
                role_name="other", assume_role_policy_document=trust(ram=["*"])
            )
        )
    assert refused.value.code == "NoPermission"
    assert refused.value.status_code == 403


def test_temporary_keys_need_their_token(sdk: SdkFactory) -> None:
    arn = make_role(sdk, "deployer", trust(ram=[UIDS["app"]]))
    creds = assume(sdk, arn).credentials
    key = (creds.access_key_id, creds.access_key_secret)
    with pytest.raises(ClientException) as missing:
        sdk.sts(key=key).get_caller_identity()
    assert missing.value.code == "InvalidSecurityToken.Missing"
    with pytest.raises(ClientException) as wrong:
        sdk.sts(key=key, token=creds.security_token[:-4] + "AAAA").get_caller_identity()
    assert wrong.value.code == "InvalidSecurityToken.MismatchWithAccessKey"


@pytest.mark.parametrize(
    ("policy", "code"),
    [
        (trust(ram=[f"acs:ram::{UIDS['registry']}:root"]), "NoPermission"),
        (trust(service=[f"{UIDS['app']}@sae.aliyuncs.com"]), "NoPermission"),
        (trust(ram=["*"], effect="Deny"), "NoPermission"),
        (
            trust(ram=[UIDS["app"]], Condition={"StringEquals": {"sts:ExternalId": "abc"}}),
            "NoPermission",
        ),
    ],
    ids=["other-account-only", "service-principal-only", "explicit-deny", "external-id-required"],
)
def test_assume_role_refused_by_trust(sdk: SdkFactory, policy: str, code: str) -> None:
    arn = make_role(sdk, "locked", policy)
    with pytest.raises(ClientException) as refused:
        assume(sdk, arn)
    assert refused.value.code == code
    assert refused.value.status_code == 403


def test_external_id_condition_is_honoured(sdk: SdkFactory) -> None:
    arn = make_role(
        sdk,
        "guarded",
        trust(ram=[UIDS["app"]], Condition={"StringEquals": {"sts:ExternalId": "abc-123"}}),
    )
    assert assume(sdk, arn, external_id="abc-123").credentials.access_key_id
    with pytest.raises(ClientException) as wrong:
        assume(sdk, arn, external_id="nope-000")
    assert wrong.value.code == "NoPermission"


def test_session_policy_narrows_the_role(sdk: SdkFactory) -> None:
    arn = make_role(sdk, "wide", trust(ram=[UIDS["app"]]), "AliyunRAMFullAccess")
    narrow = json.dumps(
        {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "ram:Get*", "Resource": "*"}]}
    )
    creds = assume(sdk, arn, policy=narrow).credentials
    ram = sdk.ram(key=(creds.access_key_id, creds.access_key_secret), token=creds.security_token)
    ram.get_role(ram_models.GetRoleRequest(role_name="wide"))
    with pytest.raises(ClientException) as refused:
        ram.list_roles(ram_models.ListRolesRequest())
    assert refused.value.code == "NoPermission"


@pytest.mark.parametrize(
    ("kwargs", "code", "status"),
    [
        ({"role_arn": "acs:ram::2222222222222222:role/missing"}, "EntityNotExist.Role", 404),
        ({"role_arn": "arn:aws:iam::1:role/x"}, "InvalidParameter.RoleArn", 400),
        ({"role_session_name": "x"}, "InvalidParameter.RoleSessionName", 400),
        ({"duration_seconds": 600}, "InvalidParameter.DurationSeconds", 400),
        ({"duration_seconds": 7200}, "InvalidParameter.DurationSeconds", 400),
        ({"policy": "{not json"}, "InvalidParameter.PolicyGrammar", 400),
        ({"policy": "x" * 2049}, "InvalidParameter.PolicySize", 400),
    ],
    ids=[
        "missing-role",
        "bad-arn",
        "short-session",
        "too-short",
        "beyond-max-session",
        "bad-policy",
        "big-policy",
    ],
)
def test_assume_role_input_errors(
    sdk: SdkFactory, kwargs: dict[str, Any], code: str, status: int
) -> None:
    arn = make_role(sdk, "target", trust(ram=[UIDS["app"]]))
    request: dict[str, Any] = {"role_arn": arn, "role_session_name": "tests", **kwargs}
    with pytest.raises(ClientException) as refused:
        sdk.sts().assume_role(sts_models.AssumeRoleRequest(**request))
    assert (refused.value.code, refused.value.status_code) == (code, status)
