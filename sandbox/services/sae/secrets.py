"""SAE secrets: key -> value maps in a namespace, chiefly image-registry logins (reference 2.7).

Wire format (captured from the official SDK, both signature schemes): every parameter is in the
query; `SecretData` is the JSON of the request's nested model object, whose one field holds the
JSON *text* of the key -> value map: `SecretData={"SecretData":"{\\"k\\":\\"v\\"}"}`. Anything
else (a bare map, the doc prose's `{"Data": ...}` form, non-string values) is refused.

Rules enforced:
- `NamespaceId` is required and must be a namespace of the caller's account (and of the
  endpoint's region when the host names one), else 404 `InvalidNamespaceId.NotFound`.
- `SecretName`: a letter, then letters, digits, `_` or `-`, at most 64 characters. The reference
  allows only `_`; accepting `-` is the sandbox's choice (the official SDK example name
  `registry-auth-acree` has hyphens; UNCONFIRMED upstream).
- Checked before the handler against the metadata (sandbox/contract.py): `NamespaceId`,
  `SecretName`, `SecretType` (`Opaque`, `kubernetes.io/dockerconfigjson`,
  `kubernetes.io/tls`), `SecretData` (a JSON object with the string `SecretData`) required;
  `SecretId` an integer in 1..1e9.
- Keys are
  Kubernetes secret keys (`[-._a-zA-Z0-9]+`). `kubernetes.io/dockerconfigjson` needs key
  `.dockerconfigjson`: base64 (line breaks ignored, as Kubernetes does) of a docker config JSON
  whose `auths` maps each registry host to `username` + `password` and/or `auth`
  (base64 `user:pass`; when both are given they must agree). `kubernetes.io/tls` needs keys
  `tls.crt` and `tls.key` (sandbox's choice, as in Kubernetes).
- Bad values the metadata cannot express: 400 `InvalidParameter.WithMessage` naming the
  parameter and the problem.

Sandbox choices (no documented code exists; the codes are in `sandbox.chosen_codes`):
- A second secret with the same `SecretName` in a namespace: 400 `Secret.AlreadyExists`.
- An unknown `SecretId` (or one in another namespace): 404 `InvalidSecret.NotFound`.
- Deleting a secret an application still names in `ImagePullSecrets`: 400 `Secret.InUse`.
- `SecretId` is an integer allocated per account, monotonically from 1, never reused; the counter
  lives in the store's meta table, so it survives restarts (and restarts at 1 on reset).
- `DescribeSecret` returns the map's values exactly as written (no extra base64 layer), so a
  `.dockerconfigjson` value comes back as the base64 the caller sent (reference: UNCONFIRMED).

State: kind `sae_secret`, scope (account, region of the namespace), id = str(SecretId); the
document is the `find_secret` shape. Its `SecretData` field is masked in `/_sandbox/state`.
`RelateApps` are the applications (kind `sae_app`, same scope) whose `config.ImagePullSecrets`
names the secret id.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from sandbox import chosen_codes
from sandbox.call import Call
from sandbox.errors import ApiError
from sandbox.services.sae.documents import APP as APP
from sandbox.services.sae.documents import SECRET as SECRET
from sandbox.services.sae.documents import Namespace, Secret, as_secret
from sandbox.services.sae.namespaces import find_namespace
from sandbox.store import Doc, Scope, Tx

DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
TLS = "kubernetes.io/tls"
DOCKER_CONFIG_KEY = ".dockerconfigjson"
TLS_KEYS = ("tls.crt", "tls.key")

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_DATA_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")
_COUNTER = "sae_secret_next_id:"


# -- lookups shared with the image-pull judgment ---------------------------------------------------


def find_secret(tx: Tx, account: str, namespace_id: str, secret_id: int) -> Doc | None:
    """A secret of the account in that namespace: {SecretId (int), SecretName, SecretType,
    NamespaceId, SecretData (dict[str, str], the decoded key -> value map), CreateTime,
    UpdateTime} (times in epoch ms), as `documents.Secret` types it."""
    region = namespace_id.partition(":")[0]
    doc = tx.get(Scope(account, region), SECRET, str(secret_id))
    if doc is None or doc.get("NamespaceId") != namespace_id:
        return None
    return doc


def docker_logins(secret: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Registry host -> (username, password) from a `kubernetes.io/dockerconfigjson` secret.

    Hosts are as written in `auths`, minus any `http(s)://` prefix and path. Empty for other
    secret types or unreadable data (never raises).
    """
    if secret.get("SecretType") != DOCKER_CONFIG_JSON:
        return {}
    try:
        auths = _docker_auths(str(secret.get("SecretData", {}).get(DOCKER_CONFIG_KEY, "")))
    except ApiError:
        return {}
    return {_host(registry): login for registry, login in auths.items()}


def relate_apps(tx: Tx, account: str, region: str, secret_id: int) -> list[dict[str, str]]:
    """{AppId, AppName} of the account's applications that pull with this secret."""
    related: list[dict[str, str]] = []
    for app in tx.all(Scope(account, region), APP):
        config = app.get("config")
        names = config.get("ImagePullSecrets") if isinstance(config, dict) else None
        if names is None:
            continue
        if str(secret_id) in {part.strip() for part in str(names).split(",")}:
            related.append({"AppId": str(app.get("AppId", "")), "AppName": app.get("AppName", "")})
    return related


# -- handlers --------------------------------------------------------------------------------------


def create_secret(call: Call) -> dict[str, Any]:
    namespace = _namespace(call)
    name = call.params.text("SecretName")
    if not _NAME.fullmatch(name):
        raise _with_message(
            "SecretName",
            "the name must start with a letter and contain only letters, digits, underscores (_) "
            "and hyphens (-), at most 64 characters",
        )
    secret_type = call.params.text("SecretType")
    data = _secret_data(call, secret_type)
    scope = Scope(call.caller.account, namespace["RegionId"])
    for other in call.tx.all(scope, SECRET):
        if other["NamespaceId"] == namespace["NamespaceId"] and other["SecretName"] == name:
            raise chosen_codes.SECRET_ALREADY_EXISTS.error(
                f"A secret named {name} already exists in namespace {namespace['NamespaceId']}."
            )
    secret_id = _allocate_id(call.tx, call.caller.account)
    now = int(call.now * 1000)
    call.tx.put(
        scope,
        SECRET,
        str(secret_id),
        {
            "SecretId": secret_id,
            "SecretName": name,
            "SecretType": secret_type,
            "NamespaceId": namespace["NamespaceId"],
            "SecretData": data,
            "CreateTime": now,
            "UpdateTime": now,
        },
    )
    return {"Data": {"SecretId": secret_id}}


def list_secrets(call: Call) -> dict[str, Any]:
    namespace = _namespace(call)
    scope = Scope(call.caller.account, namespace["RegionId"])
    secrets = [
        _view(call.tx, call.caller.account, doc, with_data=False)
        for doc in map(as_secret, call.tx.all(scope, SECRET))
        if doc["NamespaceId"] == namespace["NamespaceId"]
    ]
    return {"Data": {"Secrets": secrets}}


def describe_secret(call: Call) -> dict[str, Any]:
    secret = _secret_or_404(call, _namespace(call))
    return {"Data": _view(call.tx, call.caller.account, secret, with_data=True)}


def update_secret(call: Call) -> dict[str, Any]:
    namespace = _namespace(call)
    secret = _secret_or_404(call, namespace)
    secret["SecretData"] = _secret_data(call, secret["SecretType"])
    secret["UpdateTime"] = int(call.now * 1000)
    call.tx.put(
        Scope(call.caller.account, namespace["RegionId"]), SECRET, str(secret["SecretId"]), secret
    )
    return {"Data": {"SecretId": secret["SecretId"]}}


def delete_secret(call: Call) -> dict[str, Any]:
    namespace = _namespace(call)
    secret = _secret_or_404(call, namespace)
    region = namespace["RegionId"]
    related = relate_apps(call.tx, call.caller.account, region, secret["SecretId"])
    if related:
        names = ", ".join(app["AppName"] or app["AppId"] for app in related)
        raise chosen_codes.SECRET_IN_USE.error(
            f"The secret {secret['SecretId']} is used by applications ({names}); remove it from "
            "their ImagePullSecrets first."
        )
    call.tx.delete(Scope(call.caller.account, region), SECRET, str(secret["SecretId"]))
    return {"Data": {"SecretId": secret["SecretId"]}}


# -- parameters ------------------------------------------------------------------------------------


def _with_message(name: str, problem: str) -> ApiError:
    return ApiError(
        400, "InvalidParameter.WithMessage", f"The parameter is invalid {{{name}}}: {problem}"
    )


def _namespace(call: Call) -> Namespace:
    namespace_id = call.params.text("NamespaceId")
    found = find_namespace(call.tx, call.caller.account, namespace_id, call.world)
    if found is None or found["RegionId"] != call.region():
        raise ApiError(
            404, "InvalidNamespaceId.NotFound", "The specified NamespaceId does not exist."
        )
    return found


def _secret_or_404(call: Call, namespace: Namespace) -> Secret:
    secret_id = call.params.integer("SecretId")
    found = find_secret(call.tx, call.caller.account, namespace["NamespaceId"], secret_id)
    if found is None:
        raise chosen_codes.SECRET_NOT_FOUND.error(
            f"The specified secret {secret_id} does not exist in namespace "
            f"{namespace['NamespaceId']}."
        )
    return as_secret(found)


def _allocate_id(tx: Tx, account: str) -> int:
    key = _COUNTER + account
    next_id = int(tx.get_meta(key) or "1")
    tx.set_meta(key, str(next_id + 1))
    return next_id


def _secret_data(call: Call, secret_type: str) -> dict[str, str]:
    """The key -> value map out of `{"SecretData": "<JSON text of the map>"}`, validated (the
    outer object and its string member were checked against the metadata already)."""
    inner = call.params.json_value("SecretData")["SecretData"]
    try:
        data = json.loads(inner)
    except (ValueError, RecursionError):
        raise _with_message("SecretData", "SecretData.SecretData is not JSON text") from None
    if not isinstance(data, dict) or not data:
        raise _with_message("SecretData", "the key-value map is empty or not a JSON object")
    for key, value in data.items():
        if not _DATA_KEY.fullmatch(key):
            raise _with_message(
                "SecretData", f"key {key!r} may contain only letters, digits, '-', '_' and '.'"
            )
        if not isinstance(value, str):
            raise _with_message("SecretData", f"the value of key {key!r} is not a string")
    if secret_type == DOCKER_CONFIG_JSON:
        if DOCKER_CONFIG_KEY not in data:
            raise _with_message(
                "SecretData", f"a {DOCKER_CONFIG_JSON} secret needs the key {DOCKER_CONFIG_KEY}"
            )
        _docker_auths(data[DOCKER_CONFIG_KEY])
    elif secret_type == TLS:
        missing = [key for key in TLS_KEYS if not data.get(key)]
        if missing:
            raise _with_message("SecretData", f"a {TLS} secret needs the keys {', '.join(missing)}")
    return data


def _b64(text: str) -> bytes:
    """Standard base64, ignoring line breaks as Kubernetes does; ValueError if malformed."""
    try:
        return base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except binascii.Error as err:
        raise ValueError(str(err)) from None


def _docker_auths(encoded: str) -> dict[str, tuple[str, str]]:
    """Registry -> (username, password) from the base64 docker config; 400 if malformed."""
    where = DOCKER_CONFIG_KEY
    try:
        config = json.loads(_b64(encoded).decode("utf-8"))
    except ValueError:  # bad base64, bad UTF-8 and bad JSON all land here
        raise _with_message(
            "SecretData", f"{where} is not the base64 of a docker config JSON"
        ) from None
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict) or not auths:
        raise _with_message(
            "SecretData", f"the docker config in {where} has no 'auths' object of registries"
        )
    logins: dict[str, tuple[str, str]] = {}
    for registry, entry in auths.items():
        if not registry.strip() or not isinstance(entry, dict):
            raise _with_message(
                "SecretData", f"auths[{registry!r}] is not a registry with a login object"
            )
        logins[registry] = _docker_login(registry, entry)
    return logins


def _docker_login(registry: str, entry: dict[str, Any]) -> tuple[str, str]:
    here = f"auths[{registry!r}]"
    username, password, auth = entry.get("username"), entry.get("password"), entry.get("auth")
    for field, value in (("username", username), ("password", password), ("auth", auth)):
        if value is not None and not isinstance(value, str):
            raise _with_message("SecretData", f"{here}.{field} is not a string")
    from_auth: tuple[str, str] | None = None
    if auth:
        try:
            decoded = _b64(auth).decode("utf-8")
        except ValueError:
            decoded = ""
        user, colon, secret = decoded.partition(":")
        if not (user and colon and secret):
            raise _with_message("SecretData", f"{here}.auth is not the base64 of 'user:password'")
        from_auth = (user, secret)
    if username or password:
        if not (username and password):
            raise _with_message("SecretData", f"{here} needs both username and password")
        if from_auth is not None and from_auth != (username, password):
            raise _with_message("SecretData", f"{here}.auth does not match username and password")
        return (username, password)
    if from_auth is None:
        raise _with_message("SecretData", f"{here} has neither username/password nor auth")
    return from_auth


def _host(registry: str) -> str:
    return registry.split("://", 1)[-1].split("/", 1)[0]


# -- views -----------------------------------------------------------------------------------------


def _view(tx: Tx, account: str, secret: Secret, *, with_data: bool) -> dict[str, Any]:
    region = str(secret["NamespaceId"]).partition(":")[0]
    view: dict[str, Any] = {
        k: secret[k]
        for k in ("SecretId", "SecretName", "SecretType", "NamespaceId", "CreateTime", "UpdateTime")
    }
    view["RelateApps"] = relate_apps(tx, account, region, secret["SecretId"])
    if with_data:
        view["SecretData"] = dict(secret["SecretData"])
    return view
