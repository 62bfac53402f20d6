"""The error codes the sandbox answers with although no Alibaba document gives them: all here.

Each case below must be answered somehow, and neither the API references (SAE's error tables,
the Container Registry pages, the gateway's common codes; reference sections 2.9, 6.1 and 9) nor
the OpenAPI metadata names a code for it. So every entry is CHOSEN, NOT DOCUMENTED, and says why
this code and this status. Services raise them through `Chosen.error`, and no other sandbox module
spells one out.

The product never decides anything by one of these codes: it re-reads the resource instead (an
app or secret by name, a tag or repository from the listing), so it works whatever the real cloud
answers. `tests/sandbox/test_chosen_codes.py` keeps both promises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.errors import ApiError


@dataclass(frozen=True)
class Chosen:
    """A code chosen by the sandbox: the HTTP status, the code and why (never documented)."""

    status: int
    code: str
    why: str

    def error(self, message: str, **extra: Any) -> ApiError:
        return ApiError(self.status, self.code, message, **extra)


# -- STS -------------------------------------------------------------------------------------------

OIDC_ISSUER_MISMATCH = Chosen(
    401,
    "AuthenticationFail.OIDCToken.IssuerNotMatch",
    "Chosen, not documented: AssumeRoleWithOIDC with a token whose `iss` is not the OIDC "
    "Provider's issuer URL. STS's error-code table names the audience (401 "
    "AuthenticationFail.OIDCToken.AudienceNotMatch) but not the issuer; named and numbered like "
    "it.",
)

# -- SAE -------------------------------------------------------------------------------------------

APPLICATION_ALREADY_EXISTS = Chosen(
    400,
    "Application.AlreadyExists",
    "Chosen, not documented: CreateApplication with an AppName already used in the namespace. "
    "SAE's CreateApplication error table has no code for it; the `<Thing>.AlreadyExists` form "
    "and 400 follow SAE's other business errors (reference 2.9).",
)
SECRET_ALREADY_EXISTS = Chosen(
    400,
    "Secret.AlreadyExists",
    "Chosen, not documented: CreateSecret with a SecretName already used in the namespace. The "
    "CreateSecret reference lists no error codes; named like Application.AlreadyExists.",
)
SECRET_IN_USE = Chosen(
    400,
    "Secret.InUse",
    "Chosen, not documented: DeleteSecret of a secret an application still names in "
    "ImagePullSecrets. The DeleteSecret reference lists no error codes; refusing (rather than "
    "breaking the app's next pull) is the stricter reading.",
)
SECRET_NOT_FOUND = Chosen(
    404,
    "InvalidSecret.NotFound",
    "Chosen, not documented: a SecretId the namespace does not have (Describe/Update/Delete "
    "Secret). Patterned on SAE's documented 404 InvalidAppId.NotFound and "
    "InvalidNamespaceId.NotFound (reference 2.9).",
)

# -- Container Registry Enterprise Edition ---------------------------------------------------------
# ACR reports failures both as error statuses and as HTTP 200 with `IsSuccess: false` and a
# `Code`: Terraform's provider checks `IsSuccess` after every CR Enterprise call and maps the codes
# INSTANCE_NOT_EXIST, NAMESPACE_NOT_EXIST and REPO_NOT_EXIST to "not found"
# (terraform-provider-alicloud `alicloud/service_alicloud_cr_ee.go`, `wrapCrServiceError`). Which
# case gets which answer is not documented, so every not-found case gets the one harder on a
# client: a success status whose body says the call failed (status 200 below).

CR_INSTANCE_NOT_EXIST = Chosen(
    200,
    "INSTANCE_NOT_EXIST",
    "Chosen, not documented: an instance id the caller's account does not have. The code is the "
    "one Terraform's provider maps to not found; no API page gives it. Answered 200 with "
    "IsSuccess false (see above).",
)
CR_REPO_NOT_EXIST = Chosen(
    200,
    "REPO_NOT_EXIST",
    "Chosen, not documented: a repository the instance does not have. The code is the one "
    "Terraform's provider maps to not found; no API page gives it. 200 with IsSuccess false.",
)
CR_TAG_NOT_EXIST = Chosen(
    200,
    "TAG_NOT_EXIST",
    "Chosen, not documented: GetRepoTag of a tag the repository does not have. Named in the "
    "family of INSTANCE_NOT_EXIST and REPO_NOT_EXIST. 200 with IsSuccess false.",
)
CR_VPC_NOT_EXIST = Chosen(
    200,
    "VPC_NOT_EXIST",
    "Chosen, not documented: CreateInstanceVpcEndpointLinkedVpc with a VPC of another account or "
    "region, or none. Named in the *_NOT_EXIST family. 200 with IsSuccess false.",
)
CR_VSWITCH_NOT_EXIST = Chosen(
    200,
    "VSWITCH_NOT_EXIST",
    "Chosen, not documented: CreateInstanceVpcEndpointLinkedVpc with a vSwitch not in the VPC. "
    "Named in the *_NOT_EXIST family. 200 with IsSuccess false.",
)
CR_VPC_ALREADY_LINKED = Chosen(
    409,
    "VPC_ALREADY_LINKED",
    "Chosen, not documented: linking an already linked VPC through another vSwitch. Named in the "
    "CR code family; 409 as for RAM's documented EntityAlreadyExists.* conflicts (reference 3.3).",
)

# -- the gateway -----------------------------------------------------------------------------------

MISSING_SIGNATURE_NONCE = Chosen(
    400,
    "MissingSignatureNonce",
    "Chosen, not documented: an RPC v1 request without SignatureNonce, or an ACS3 one whose "
    "signed x-acs-signature-nonce is empty (legacy ROA requests may leave the nonce out, as "
    "aliyun-python-sdk-core does; sandbox/auth.py). The signature references make the nonce "
    "required but give no code for its absence.",
)

RAM_FORBIDDEN = Chosen(
    403,
    "Forbidden.RAM",
    "Chosen, not documented: a RAM user or assumed role calling a VPC or SAE action its policies "
    "do not allow (sandbox/permission_gate.py). RAM and STS document 403 NoPermission and ACR "
    "403 NoPrivilege, but neither VPC's nor SAE's error tables give a no-permission code. "
    "Forbidden.RAM, 'User not authorized to operate on the specified resource, or this API "
    "doesn't support RAM.', is the gateway's answer operators report for such calls "
    "(https://developer.aliyun.com/ask/297041), not an API reference's; 403 as for NoPermission.",
)

# -- the sandbox's own gateway (never part of any Alibaba API) ------------------------------------

MISSING_REGION = Chosen(
    400,
    "Sandbox.MissingRegion",
    "Chosen, not documented: a regional request (SAE, VPC, CR) that names no region by endpoint "
    "host, x-sandbox-region header or RegionId (sandbox/regions.py). The real cloud always knows "
    "the region from its endpoint host, so no Alibaba code exists; the Sandbox. prefix says so.",
)
REGION_MISMATCH = Chosen(
    400,
    "Sandbox.RegionMismatch",
    "Chosen, not documented: a RegionId naming another region than the one the request "
    "addressed (sandbox/regions.py). The documents are silent; refusing is the stricter reading "
    "and catches a client built for the wrong region.",
)

TABLE: tuple[Chosen, ...] = (
    APPLICATION_ALREADY_EXISTS,
    SECRET_ALREADY_EXISTS,
    SECRET_IN_USE,
    SECRET_NOT_FOUND,
    CR_INSTANCE_NOT_EXIST,
    CR_REPO_NOT_EXIST,
    CR_TAG_NOT_EXIST,
    CR_VPC_NOT_EXIST,
    CR_VSWITCH_NOT_EXIST,
    CR_VPC_ALREADY_LINKED,
    MISSING_SIGNATURE_NONCE,
    RAM_FORBIDDEN,
    MISSING_REGION,
    REGION_MISMATCH,
    OIDC_ISSUER_MISMATCH,
)
"""Every code the sandbox chose."""
