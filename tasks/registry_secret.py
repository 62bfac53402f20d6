"""The `secret` access method: an SAE image-pull secret holding account B's registry login.

The secret is a `kubernetes.io/dockerconfigjson` secret in the app's namespace with one login
for each of the registry's domains (public and VPC), so the app can pull over either. Existing
secrets are compared by their decoded logins, not by the raw text (base64 and JSON layout may
differ without the login differing).

The password never leaves this module's local variables: states, rows, changes and results hold
only a fingerprint (a truncated sha256 of the logins), enough to tell "same" from "different".

SAE documents no error codes for its secret APIs, so none is relied on: a CreateSecret that fails
is followed by looking for the secret by name (adopted or updated if there), and a DeleteSecret
that fails counts as done only when the secret is no longer listed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from alibabacloud_sae20190506 import models as sae_models

from blocks import AcrRegistryLogin, AlibabaCloudCredentials
from crossdeploy.cloud import CloudError, call
from crossdeploy.ledger import UNASSIGNED, Intent
from crossdeploy.permissions import ALL, Arns, Needs, grant
from crossdeploy.plan import BLOCKED, OK, Change, PlanRow
from crossdeploy.spec import DeploySpec
from tasks import network
from tasks.step import Accounts, Inspection, Step

SECRET_TYPE = "kubernetes.io/dockerconfigjson"  # noqa: S105 - a type name, not a secret
DATA_KEY = ".dockerconfigjson"
RESOURCE_TYPE = "sae.secret"

Logins = dict[str, tuple[str, str]]
"""Registry host -> (username, password)."""


@dataclass(frozen=True)
class RegistrySecretState:
    namespace_id: str
    secret_name: str
    secret_id: int | None
    hosts: tuple[str, ...]
    action: str
    """create, update, or OK / BLOCKED (crossdeploy.plan)."""
    login_fingerprint: str
    """Of the wanted logins: apply refuses a login other than the one inspected."""
    rows: tuple[PlanRow, ...] = ()


@dataclass(frozen=True)
class RegistrySecretResult:
    namespace_id: str
    secret_name: str
    secret_id: int
    changes: tuple[Change, ...] = ()


def secret_name_for(app_name: str) -> str:
    """SAE secret names are letters, digits and underscores, starting with a letter."""
    return "acr_pull_" + app_name.replace("-", "_")


def inspect_registry_secret(
    creds_a: AlibabaCloudCredentials,
    spec: DeploySpec,
    *,
    namespace_id: str,
    login: AcrRegistryLogin,
) -> RegistrySecretState:
    """Is the pull secret there with this login for both registry domains?"""
    name = secret_name_for(spec.app.name)
    hosts = spec.image.ref.domains()
    wanted = _fingerprint(_wanted_logins(hosts, login))
    sae = creds_a.get_client("sae")
    found = _find(sae, namespace_id, name)
    resource = f"{name} in {namespace_id}"
    wanted_text = f"login of {login.username} for {hosts[0]} and its VPC domain"

    def state(
        secret_id: int | None, action: str, now: str, reason: str = ""
    ) -> RegistrySecretState:
        row = PlanRow("secret", "A", resource, now, wanted_text, action, reason)
        return RegistrySecretState(namespace_id, name, secret_id, hosts, action, wanted, (row,))

    if found is None:
        return state(None, "create", "missing")
    secret_id, secret_type = found
    if secret_type != SECRET_TYPE:
        return state(
            secret_id,
            BLOCKED,
            f"a {secret_type} secret",
            f"Secret {name} (id {secret_id}) in {namespace_id} is a {secret_type} secret, not an "
            "image-pull login, and it is not ours to replace. Delete or rename it, or use "
            "access.method: ram-role.",
        )
    current = _current_logins(sae, namespace_id, secret_id)
    if _fingerprint(current) == wanted:
        return state(secret_id, OK, wanted_text)
    return state(secret_id, "update", _describe(current, login.username, hosts))


def apply_registry_secret(
    creds_a: AlibabaCloudCredentials, state: RegistrySecretState, login: AcrRegistryLogin
) -> RegistrySecretResult:
    """Create or update the secret as inspected; an identical secret is left alone."""
    if state.action == BLOCKED:
        raise RuntimeError(f"secret: {state.rows[0].reason}")
    logins = _wanted_logins(state.hosts, login)
    if _fingerprint(logins) != state.login_fingerprint:
        raise ValueError("this is not the registry login the secret was inspected with")
    if state.action == OK and state.secret_id is not None:
        return RegistrySecretResult(state.namespace_id, state.secret_name, state.secret_id)
    sae = creds_a.get_client("sae")
    if state.secret_id is not None:
        return _update(sae, state, logins, state.secret_id)
    try:
        created = call(
            "sae:CreateSecret",
            sae.create_secret,
            sae_models.CreateSecretRequest(
                namespace_id=state.namespace_id,
                secret_name=state.secret_name,
                secret_type=SECRET_TYPE,
                secret_data=sae_models.CreateSecretRequestSecretData(secret_data=_data(logins)),
            ),
        ).body.data
    except CloudError:
        found = _find(sae, state.namespace_id, state.secret_name)
        if found is None:
            raise
        return _converge(sae, state, logins, found[0])
    return _result(state, int(created.secret_id), "created")


def remove_registry_secret(creds_a: AlibabaCloudCredentials, changes: list[Change]) -> list[Change]:
    """Delete the secrets these changes say we created (an app using one must go first)."""
    sae = creds_a.get_client("sae")
    removed = []
    for change in changes:
        if change.resource_type != RESOURCE_TYPE or change.action != "created":
            continue
        namespace_id, _, secret_id = change.resource_id.rpartition("/")
        try:
            call(
                "sae:DeleteSecret",
                sae.delete_secret,
                sae_models.DeleteSecretRequest(namespace_id=namespace_id, secret_id=int(secret_id)),
            )
        except CloudError:
            if _listed(sae, namespace_id, int(secret_id)):
                raise
            continue
        removed.append(Change("A", RESOURCE_TYPE, change.resource_id, "deleted", change.detail))
    return removed


# -- internals -------------------------------------------------------------------------------------


def _wanted_logins(hosts: tuple[str, ...], login: AcrRegistryLogin) -> Logins:
    password = login.password.get_secret_value()
    return {host: (login.username, password) for host in hosts}


def _fingerprint(logins: Logins) -> str:
    text = json.dumps(sorted((h, u, p) for h, (u, p) in logins.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _data(logins: Logins) -> str:
    """SecretData's inner text: {".dockerconfigjson": base64 of the docker config JSON}."""
    auths = {
        host: {
            "username": user,
            "password": password,
            "auth": base64.b64encode(f"{user}:{password}".encode()).decode(),
        }
        for host, (user, password) in logins.items()
    }
    config = json.dumps({"auths": auths}, separators=(",", ":"))
    return json.dumps({DATA_KEY: base64.b64encode(config.encode()).decode()})


def _decode(data: dict[str, str] | None) -> Logins:
    """Logins out of a secret's data; empty when unreadable (then it simply differs)."""
    try:
        config = json.loads(base64.b64decode((data or {}).get(DATA_KEY, "")))
        auths = config["auths"]
    except (ValueError, TypeError, KeyError, binascii.Error):
        return {}
    logins: Logins = {}
    for host, entry in auths.items() if isinstance(auths, dict) else ():
        if not isinstance(entry, dict):
            continue
        user, password = entry.get("username"), entry.get("password")
        if not (user and password) and entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, binascii.Error):
                continue
        if isinstance(user, str) and isinstance(password, str):
            logins[host.split("://", 1)[-1].split("/", 1)[0]] = (user, password)
    return logins


def _describe(current: Logins, username: str, hosts: tuple[str, ...]) -> str:
    """What differs, in words that name no password."""
    if set(current) != set(hosts):
        return f"logins for {', '.join(sorted(current)) or 'no registry'}"
    users = {user for user, _ in current.values()}
    if users != {username}:
        return f"login of {', '.join(sorted(users))}"
    return f"login of {username}, another password"


def _secrets(sae: Any, namespace_id: str) -> list[Any]:
    """The namespace's secrets as ListSecrets shows them."""
    listing = call(
        "sae:ListSecrets",
        sae.list_secrets,
        sae_models.ListSecretsRequest(namespace_id=namespace_id),
    ).body.data
    return list((listing.secrets if listing else None) or [])


def _find(sae: Any, namespace_id: str, name: str) -> tuple[int, str] | None:
    """(SecretId, SecretType) of the namespace's secret with this name."""
    for secret in _secrets(sae, namespace_id):
        if secret.secret_name == name:
            return int(secret.secret_id), str(secret.secret_type)
    return None


def _listed(sae: Any, namespace_id: str, secret_id: int) -> bool:
    """Whether the namespace still has the secret with this id."""
    return any(int(secret.secret_id) == secret_id for secret in _secrets(sae, namespace_id))


def _current_logins(sae: Any, namespace_id: str, secret_id: int) -> Logins:
    request = sae_models.DescribeSecretRequest(namespace_id=namespace_id, secret_id=secret_id)
    data = call("sae:DescribeSecret", sae.describe_secret, request).body.data
    return _decode(data.secret_data if data else None)


def _update(
    sae: Any, state: RegistrySecretState, logins: Logins, secret_id: int
) -> RegistrySecretResult:
    call(
        "sae:UpdateSecret",
        sae.update_secret,
        sae_models.UpdateSecretRequest(
            namespace_id=state.namespace_id,
            secret_id=secret_id,
            secret_data=sae_models.UpdateSecretRequestSecretData(secret_data=_data(logins)),
        ),
    )
    return _result(state, secret_id, "updated")


def _converge(
    sae: Any, state: RegistrySecretState, logins: Logins, secret_id: int
) -> RegistrySecretResult:
    """CreateSecret failed and a secret of that name is there: our own lost reply, or someone
    else's secret.

    Identical logins mean the earlier attempt went through (ours: created); otherwise update it.
    """
    if _current_logins(sae, state.namespace_id, secret_id) == logins:
        return _result(state, secret_id, "created")
    return _update(sae, state, logins, secret_id)


def _result(state: RegistrySecretState, secret_id: int, action: str) -> RegistrySecretResult:
    change = Change(
        "A",
        RESOURCE_TYPE,
        f"{state.namespace_id}/{secret_id}",
        action,
        f"{state.secret_name} (registry login for {', '.join(state.hosts)})",
    )
    return RegistrySecretResult(state.namespace_id, state.secret_name, secret_id, (change,))


# -- the step ------------------------------------------------------------------------------------


class RegistrySecretStep(Step[RegistrySecretState, RegistrySecretResult]):
    """The pull secret in account A's namespace (access method secret)."""

    name = "secret"
    task_name = "registry-secret"
    account = "A"
    needs = (network.STEP.name,)
    reverses = frozenset({(RESOURCE_TYPE, "created")})

    def wanted(self, spec: DeploySpec, accounts: Accounts) -> bool:
        return accounts.login is not None

    def permissions(self, spec: DeploySpec, arns: Arns) -> Needs:
        reading = ("sae:ListSecrets", "sae:DescribeSecret")
        return Needs(
            reads=grant(ALL, *reading),
            writes=grant(ALL, "sae:CreateSecret", "sae:UpdateSecret"),
            removes=grant(ALL, "sae:ListSecrets", "sae:DeleteSecret"),
        )

    def inspect(
        self, accounts: Accounts, spec: DeploySpec, found: Inspection
    ) -> RegistrySecretState:
        assert accounts.login is not None  # wanted() says so
        namespace_id = found.of(network.STEP).namespace_id
        return inspect_registry_secret(
            accounts.app, spec, namespace_id=namespace_id, login=accounts.login
        )

    def apply(self, accounts: Accounts, state: RegistrySecretState) -> RegistrySecretResult:
        assert accounts.login is not None
        return apply_registry_secret(accounts.app, state, accounts.login)

    def landed(
        self, state: RegistrySecretState, result: RegistrySecretResult
    ) -> RegistrySecretState:
        if result.secret_id == state.secret_id:
            return state
        return replace(state, secret_id=result.secret_id)

    def remove(self, accounts: Accounts, spec: DeploySpec, changes: list[Change]) -> list[Change]:
        return remove_registry_secret(accounts.app, changes)

    def intents(self, state: RegistrySecretState) -> list[Intent]:
        if state.action != "create":
            return []
        change = Change("A", RESOURCE_TYPE, f"{state.namespace_id}/{UNASSIGNED}", "created")
        return [Intent(change, {"name": state.secret_name})]

    def confirm(self, accounts: Accounts, intent: Intent) -> list[Change]:
        """Ours when a secret of our name and type is in our namespace."""
        change = intent.change
        namespace_id = change.resource_id.rpartition("/")[0]
        found = _find(accounts.app.get_client("sae"), namespace_id, intent.evidence["name"])
        if found is None or found[1] != SECRET_TYPE:
            return []
        return [replace(change, resource_id=f"{namespace_id}/{found[0]}")]


STEP = RegistrySecretStep()
