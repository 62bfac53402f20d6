"""The RAM permission gate: a RAM user or an assumed role may do only what its policies allow.

The account's root keys may do everything, as on the cloud. A RAM user is judged by the policies
attached to it and to the user groups it is in; an assumed role by the role's attached policies,
then by the session policy given to AssumeRole, which can only narrow them. Each route's action
(`Route.ram_action`) must be allowed on every resource `ram_resources.resources` names; an explicit
Deny beats any Allow.
GetCallerIdentity needs no permission (STS: "No authorization is required"), nor does an action
served unsigned (`Route.anonymous`: AssumeRoleWithOIDC, judged by the role's trust policy alone).

A refusal carries the product's no-permission code and `AccessDeniedDetail` with the fields RAM
documents for it (AuthAction, AuthPrincipalType `SubUser`/`AssumedRoleUser`,
AuthPrincipalOwnerId, AuthPrincipalDisplayName, PolicyType, NoPermissionType,
EncodedDiagnosticMessage: https://help.aliyun.com/en/agentrun/api-agentrun-2025-09-10-accessdenieddetail).
The encoded message is opaque on the cloud (RAM's DecodeDiagnosticMessage reads it); the sandbox
encodes the decoded form that API documents, AuthResource included, as base64 JSON
(https://help.aliyun.com/zh/ram/developer-reference/api-ram-2015-05-01-decodediagnosticmessage).
"""

from __future__ import annotations

import base64
import json

from sandbox import chosen_codes
from sandbox.call import Call
from sandbox.errors import ApiError
from sandbox.policy import Decision, PolicyDocument, evaluate
from sandbox.ram_resources import resources
from sandbox.services import ram

NOT_AUTHORIZED = "You are not authorized to do this action. You should be authorized by RAM."
"""RAM's and STS's documented NoPermission message (reference section 3.3, AssumeRole)."""


def authorize(call: Call) -> None:
    """Refuse the call unless the caller's policies allow its action on all its resources."""
    caller = call.caller
    if caller.is_root or call.route.anonymous or call.route.action == "GetCallerIdentity":
        return
    action = call.route.ram_action
    if caller.identity_type == "RAMUser":
        documents = ram.user_permission_documents(call.tx, caller.account, caller.user_name)
    else:
        documents = ram.role_permission_documents(call.tx, caller.account, caller.role_name)
    session = (
        [PolicyDocument.parse(caller.session_policy, "permission")]
        if caller.session_policy is not None
        else None
    )
    for resource in resources(call):
        decision = evaluate(documents, action, resource)
        policy_type = "AccountLevelIdentityBasedPolicy"
        if decision.allowed and session is not None:
            decision = evaluate(session, action, resource)
            policy_type = "SessionPolicy"
        if not decision.allowed:
            raise _refusal(call, resource, decision, policy_type)


def _refusal(call: Call, resource: str, decision: Decision, policy_type: str) -> ApiError:
    caller = call.caller
    user = caller.identity_type == "RAMUser"
    principal = {
        "AuthPrincipalType": "SubUser" if user else "AssumedRoleUser",
        "AuthPrincipalOwnerId": caller.account,
        "AuthPrincipalDisplayName": (
            caller.user_name if user else f"{caller.role_name}:{caller.session_name}"
        ),
    }
    explicit = decision is Decision.DENY
    diagnostic = {
        "ExplicitDeny": explicit,
        "NoPermissionPolicyType": policy_type,
        "AuthAction": call.route.ram_action,
        "AuthResource": resource,
        "AuthPrincipal": principal,
    }
    detail = {
        "AuthAction": call.route.ram_action,
        **principal,
        "PolicyType": policy_type,
        "NoPermissionType": "ExplicitDeny" if explicit else "ImplicitDeny",
        "EncodedDiagnosticMessage": base64.b64encode(json.dumps(diagnostic).encode()).decode(),
    }
    code = call.route.product.code
    if code == "cr":
        # ACR's documented 403 NoPrivilege (reference section 6.1).
        return ApiError(
            403, "NoPrivilege", "Access denied for this user.", AccessDeniedDetail=detail
        )
    if code in ("vpc", "sae"):
        return chosen_codes.RAM_FORBIDDEN.error(
            "User not authorized to operate on the specified resource, or this API doesn't "
            "support RAM.",
            AccessDeniedDetail=detail,
        )
    return ApiError(403, "NoPermission", NOT_AUTHORIZED, AccessDeniedDetail=detail)
