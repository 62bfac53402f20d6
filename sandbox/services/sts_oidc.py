"""The OIDC token AssumeRoleWithOIDC is given, judged as STS does: the provider, the token's
signature, issuer, audience and expiry.

The provider is the world's (`ram.<account>.oidc_providers`); its issuer's public keys come from
the world file, so the signature is verified (joserfc) without fetching the issuer's JWKS. Codes
and messages: STS error codes, https://help.aliyun.com/zh/ram/developer-reference/api-sts-2015-04-01-errorcodes
(all 401); the wrong issuer, which that table does not name, from `sandbox.chosen_codes`.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    InvalidKeyIdError,
    JoseError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import KeySet

from sandbox import chosen_codes
from sandbox.errors import ApiError
from sandbox.world import OidcProvider, World

PROVIDER_ARN = re.compile(r"^acs:ram::(\d{1,20}):oidc-provider/([a-zA-Z0-9.\-]{1,128})$")
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
"""Public-key algorithms only: the table refuses HS256 ("unknown"), so no shared secrets."""
_TOKEN_CHARS = (4, 20_000)
"""OIDCToken length, AssumeRoleWithOIDC reference."""


@dataclass(frozen=True)
class OidcIdentity:
    """Who the token names, as the role's trust policy sees it (`oidc:*` condition keys)."""

    provider_arn: str
    provider_account: str
    issuer: str
    audience: str
    subject: str
    expires_at: float

    def context(self) -> dict[str, str]:
        return {"oidc:iss": self.issuer, "oidc:aud": self.audience, "oidc:sub": self.subject}


def _refused(code: str, message: str) -> ApiError:
    return ApiError(401, code, message)


def _invalid(message: str) -> ApiError:
    return _refused("AuthenticationFail.OIDCToken.Invalid", message)


def find_provider(world: World, arn: str) -> tuple[str, OidcProvider]:
    """The registered provider an ARN names, with its account uid."""
    match = PROVIDER_ARN.match(arn)
    if match is not None:
        uid, name = match.groups()
        for account in world.accounts:
            if account.uid != uid or account.name not in world.ram:
                continue
            for provider in world.ram[account.name].oidc_providers:
                if provider.name == name:
                    return uid, provider
    raise _refused("AuthenticationFail.NoPermission", "No such OIDC Provider registered.")


def verify(world: World, provider_arn: str, token: str, now: float) -> OidcIdentity:
    """The token's identity once everything STS checks holds; ApiError (401) otherwise."""
    account, provider = find_provider(world, provider_arn)
    if not token:
        raise _invalid("The OIDCToken can not empty.")
    if not _TOKEN_CHARS[0] <= len(token) <= _TOKEN_CHARS[1] or token.count(".") != 2:
        raise _invalid("The number of Jwt field should be divided into 3 parts with '.' .")
    claims = _verified_claims(provider, token)
    issuer = str(claims.get("iss", ""))
    if issuer != provider.issuer_url:
        raise chosen_codes.OIDC_ISSUER_MISMATCH.error(
            f"Invalid issuer: {issuer!r} is not the issuer of the OIDC Provider."
        )
    audiences = claims.get("aud", [])
    audiences = [audiences] if isinstance(audiences, str) else list(audiences)
    audience = next((a for a in audiences if a in provider.client_ids), None)
    if audience is None:
        raise _refused("AuthenticationFail.OIDCToken.AudienceNotMatch", "Invalid audience.")
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise _invalid("The Jwt content is invalid that cannot be recognized.")
    if expires <= now:
        raise _refused("AuthenticationFail.OIDCToken.Expired", "This JsonWebToken is expired.")
    return OidcIdentity(
        provider_arn=provider_arn,
        provider_account=account,
        issuer=issuer,
        audience=audience,
        subject=str(claims.get("sub", "")),
        expires_at=float(expires),
    )


def _verified_claims(provider: OidcProvider, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(provider.jwks)  # type: ignore[arg-type]
    try:
        decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
    except (BadSignatureError, InvalidKeyIdError):  # no key of the issuer signed it
        raise _refused(
            "AuthenticationFail.OIDCToken.InvalidSignature",
            "OIDC token validate failed: invalid signature.",
        ) from None
    except UnsupportedAlgorithmError:
        algorithm = _header_algorithm(token)
        raise _invalid(
            f"The algorithm {algorithm} that be specified in Jwt header is unknown."
        ) from None
    except (JoseError, ValueError, KeyError, TypeError):
        raise _invalid("The Jwt content is invalid that cannot be recognized.") from None
    return dict(decoded.claims)


def _header_algorithm(token: str) -> str:
    header = token.split(".", 1)[0]
    try:
        return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"])
    except (ValueError, KeyError, TypeError):
        return ""
