"""STS 2015-04-01: who am I, and AssumeRole / AssumeRoleWithOIDC, which mint expiring keys that
act as the role.

The world's long-term access keys (the accounts' root keys and their RAM users' keys) and the
temporary keys live in the store as `access_key` documents; `sandbox.auth` reads them to
authenticate every request.
"""

from __future__ import annotations

import re
import secrets
import string
from typing import Any

from sandbox.auth import KEY_KIND, KEY_SCOPE
from sandbox.call import Call, iso_time
from sandbox.errors import ApiError
from sandbox.policy import PolicyDocument, PolicyError, Principal, trust_allows
from sandbox.services import ram, sts_oidc
from sandbox.store import Tx
from sandbox.world import AccessKey, World

ROLE_ARN = re.compile(r"^acs:ram::(\d{1,20}):role/([a-zA-Z0-9.\-]{1,64})$")
_SESSION = re.compile(r"^[A-Za-z0-9.@\-_]{2,64}$")
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/\-]{2,1224}$")
_ALNUM = string.ascii_letters + string.digits


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def seed(tx: Tx, world: World) -> None:
    """The accounts' root keys, and their RAM users' keys (which act as the user)."""
    for account in world.accounts:
        for key in account.access_keys:
            _put_key(tx, key, account.uid, account.name, identity_type="Account")
    for account_name, ram_account in world.ram.items():
        uid = world.account(account_name).uid
        for user in ram_account.users:
            for key in user.access_keys:
                _put_key(
                    tx,
                    key,
                    uid,
                    account_name,
                    identity_type="RAMUser",
                    user_name=user.name,
                    user_id=ram.user_id(uid, user.name),
                )


def _put_key(tx: Tx, key: AccessKey, uid: str, account_name: str, **identity: str) -> None:
    doc = {"secret": key.secret, "account": uid, "account_name": account_name, **identity}
    tx.put(KEY_SCOPE, KEY_KIND, key.id, doc)


def get_caller_identity(call: Call) -> dict[str, Any]:
    caller = call.caller
    out: dict[str, Any] = {
        "AccountId": caller.account,
        "Arn": caller.arn,
        "IdentityType": caller.identity_type,
    }
    if caller.identity_type == "AssumedRoleUser":
        out.update(PrincipalId=f"{caller.role_id}:{caller.session_name}", RoleId=caller.role_id)
    elif caller.identity_type == "RAMUser":
        # GetCallerIdentity: a RAM user's PrincipalId and UserId are its user ID
        # (https://help.aliyun.com/document_detail/43767.html).
        out.update(PrincipalId=caller.user_id, UserId=caller.user_id)
    else:
        out.update(PrincipalId=caller.account, UserId=caller.account)
    return out


def assume_role(call: Call) -> dict[str, Any]:
    params = call.params
    role_account, role_name = _role_arn(params.text("RoleArn"))
    session = _session_name(params.text("RoleSessionName"))
    external_id = params.text("ExternalId")
    if external_id and not _EXTERNAL_ID.match(external_id):
        raise ApiError(
            400, "InvalidParameter.ExternalId", "The parameter ExternalId is wrongly formed."
        )
    session_policy = _session_policy(params.text("Policy"))
    role = ram.find_role(call.tx, role_account, role_name)
    if role is None:
        raise ApiError(404, "EntityNotExist.Role", "The specified Role not exists.")
    duration = _duration(params.integer("DurationSeconds", default=3600), role)
    context = {"sts:ExternalId": external_id} if external_id else {}
    if not trust_allows(
        ram.trust_document(role), call.caller.principal, role_account, context
    ).allowed:
        raise ApiError(
            403,
            "NoPermission",
            "You are not authorized to do this action. You should be authorized by RAM.",
        )
    return _mint(call, role_account, role, session, session_policy, duration)


def assume_role_with_oidc(call: Call) -> dict[str, Any]:
    """An identity provider's user becomes the role (RRSA): the token is verified
    (`sts_oidc.verify`), then the role's trust policy must name the provider (Federated) and hold
    for the token's `oidc:iss`/`oidc:aud`/`oidc:sub`. Anonymous: the token is the credential
    (the SDK sends it with `auth_type='Anonymous'`)."""
    params = call.params
    role_account, role_name = _role_arn(params.text("RoleArn"))
    session = _session_name(params.text("RoleSessionName"))
    session_policy = _session_policy(params.text("Policy"))
    identity = sts_oidc.verify(
        call.world, params.text("OIDCProviderArn"), params.text("OIDCToken"), call.now
    )
    role = ram.find_role(call.tx, role_account, role_name)
    if role is None:
        raise ApiError(404, "EntityNotExist.Role", "The specified Role not exists.")
    duration = _duration(params.integer("DurationSeconds", default=3600), role)
    who = Principal(identity.provider_account, "federated", identity.provider_arn)
    if not trust_allows(ram.trust_document(role), who, role_account, identity.context()).allowed:
        raise ApiError(401, "AuthenticationFail.NoPermission", "There is no permission")
    answer = _mint(call, role_account, role, session, session_policy, duration)
    answer["OIDCTokenInfo"] = {
        "Issuer": identity.issuer,
        "Subject": identity.subject,
        "ClientIds": identity.audience,
        "ExpirationTime": iso_time(identity.expires_at),
    }
    return answer


def _role_arn(arn: str) -> tuple[str, str]:
    match = ROLE_ARN.match(arn)
    if match is None:
        raise ApiError(400, "InvalidParameter.RoleArn", "The parameter RoleArn is wrongly formed.")
    return match.group(1), match.group(2)


def _session_name(session: str) -> str:
    if not _SESSION.match(session):
        raise ApiError(
            400,
            "InvalidParameter.RoleSessionName",
            "The parameter RoleSessionName is wrongly formed.",
        )
    return session


def _duration(duration: int, role: dict[str, Any]) -> int:
    """From 900 s to the role's MaxSessionDuration (3600 s unless the role allows up to 43200):
    DurationSeconds in https://www.alibabacloud.com/help/en/ram/developer-reference/api-sts-2015-04-01-assumerole
    and .../api-sts-2015-04-01-assumerolewithoidc."""
    most = int(role["MaxSessionDuration"])
    if not 900 <= duration <= most:
        raise ApiError(
            400,
            "InvalidParameter.DurationSeconds",
            f"The Min/Max value of DurationSeconds is 15min/{most // 3600}hr.",
        )
    return duration


def _mint(
    call: Call,
    role_account: str,
    role: dict[str, Any],
    session: str,
    session_policy: str | None,
    duration: int,
) -> dict[str, Any]:
    """Temporary keys acting as the role until the sandbox clock passes `duration` seconds."""
    expires_at = call.now + duration
    key_id = "STS.NT" + _random(_ALNUM, 24)
    key_secret = _random(_ALNUM, 44)
    token = "CAIS" + _random(_ALNUM + "+/", 380)
    account_name = next(
        (a.name for a in call.world.accounts if a.uid == role_account), role_account
    )
    call.tx.put(
        KEY_SCOPE,
        KEY_KIND,
        key_id,
        {
            "secret": key_secret,
            "security_token": token,
            "expires_at": expires_at,
            "account": role_account,
            "account_name": account_name,
            "identity_type": "AssumedRoleUser",
            "role_name": role["RoleName"],
            "role_id": role["RoleId"],
            "session_name": session,
            "session_policy": session_policy,
        },
    )
    return {
        "Credentials": {
            "AccessKeyId": key_id,
            "AccessKeySecret": key_secret,
            "SecurityToken": token,
            "Expiration": iso_time(expires_at),
        },
        "AssumedRoleUser": {
            "Arn": f"acs:ram::{role_account}:role/{role['RoleName']}/{session}",
            "AssumedRoleId": f"{role['RoleId']}:{session}",
        },
    }


def _session_policy(text: str) -> str | None:
    if not text:
        return None
    if len(text) > 2048:
        raise ApiError(400, "InvalidParameter.PolicySize", "The policy size exceeds the limit.")
    try:
        PolicyDocument.parse(text, "permission")
    except PolicyError as exc:
        raise ApiError(
            400, "InvalidParameter.PolicyGrammar", f"The policy grammar is invalid: {exc}"
        ) from None
    return text
