"""SAE secrets over ROA through the official SDK: the image-registry logins an app pulls with.

The SDK sends `SecretData` as the JSON of its nested model, `{"SecretData": "<JSON map text>"}`;
a `kubernetes.io/dockerconfigjson` secret carries the base64 docker config under
`.dockerconfigjson`, built (`pull_worlds.docker_config`) as the TypeScript SDK example does
(reference 2.7).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from alibabacloud_sae20190506 import models as sae_models
from alibabacloud_tea_openapi import utils_models as openapi_models
from alibabacloud_tea_openapi.exceptions import ClientException
from darabonba.runtime import RuntimeOptions

from sandbox.services.sae import secrets
from sandbox.store import Scope, Store
from sandbox.testing import SandboxAdmin, SandboxProcess
from sandbox.world import bundled_world_path
from tests.support.clients import UIDS, SdkFactory
from tests.support.pull_worlds import docker_config
from tests.support.sae_secrets import (
    DOCKER,
    NS,
    PASSWORD,
    PUBLIC,
    USER,
    VPC,
    create,
    pull_data,
    update,
)

OTHER_NS = "cn-hangzhou:isolated"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def describe(sae: Any, secret_id: Any, namespace: str | None = NS) -> Any:
    return sae.describe_secret(
        sae_models.DescribeSecretRequest(namespace_id=namespace, secret_id=secret_id)
    ).body


def listed(sae: Any, namespace: str | None = NS) -> Any:
    return sae.list_secrets(sae_models.ListSecretsRequest(namespace_id=namespace)).body


def delete(sae: Any, secret_id: Any, namespace: str | None = NS) -> Any:
    return sae.delete_secret(
        sae_models.DeleteSecretRequest(namespace_id=namespace, secret_id=secret_id)
    ).body


def refused(call: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientException) as err:
        call()
    return err.value.code, err.value.status_code, err.value.data["Message"]


# -- the round trip --------------------------------------------------------------------------------


@pytest.mark.parametrize("v2", [False, True], ids=["acs3", "roa-v1"])
def test_create_list_describe_update_delete(sdk: SdkFactory, admin: SandboxAdmin, v2: bool) -> None:
    sae = sdk.sae("app", v2=v2)
    created = create(sae).body
    assert (created.success, created.code) == (True, "200")
    secret_id = created.data.secret_id
    assert isinstance(secret_id, int) and secret_id >= 1

    page = listed(sae)
    assert page.success is True
    [item] = page.data.secrets
    assert (item.secret_id, item.secret_name, item.secret_type, item.namespace_id) == (
        secret_id,
        "registry-auth",
        DOCKER,
        NS,
    )
    assert item.relate_apps == []
    assert isinstance(item.create_time, int) and item.create_time > 1_600_000_000_000
    assert item.update_time == item.create_time
    assert listed(sae, OTHER_NS).data.secrets == []

    data = describe(sae, secret_id).data
    assert (data.secret_id, data.secret_name, data.secret_type, data.namespace_id) == (
        secret_id,
        "registry-auth",
        DOCKER,
        NS,
    )
    assert data.secret_data == pull_data()
    config = json.loads(base64.b64decode(data.secret_data[".dockerconfigjson"]))
    assert config["auths"][VPC]["password"] == PASSWORD
    assert data.relate_apps == []

    rotated = pull_data(password="rotated-login")
    assert update(sae, secret_id, rotated).body.data.secret_id == secret_id
    after = describe(sae, secret_id).data
    assert after.secret_data == rotated
    assert after.create_time == data.create_time
    assert after.update_time >= data.update_time

    assert delete(sae, secret_id).data.secret_id == secret_id
    assert listed(sae).data.secrets == []
    assert refused(lambda: describe(sae, secret_id))[:2] == ("InvalidSecret.NotFound", 404)

    assert [(w["action"], w["product"], w["status"]) for w in admin.writes()] == [
        ("CreateSecret", "sae", 200),
        ("UpdateSecret", "sae", 200),
        ("DeleteSecret", "sae", 200),
    ]
    reads = [r["action"] for r in admin.requests() if not r["write"]]
    assert set(reads) == {"ListSecrets", "DescribeSecret"}


@pytest.mark.contract_breaches
def test_wire_format_is_the_sdks_nested_json(sdk: SdkFactory) -> None:
    """The exact query value the SDK sends is accepted; other shapes are refused by the gateway
    (the metadata: a JSON object whose string member `SecretData` is required), named."""
    sae = sdk.sae("app")
    inner = json.dumps({"token": "abc"})
    body = raw_create(sae, json.dumps({"SecretData": inner}), "Opaque", "raw")
    secret_id = body["body"]["Data"]["SecretId"]
    assert describe(sae, secret_id).data.secret_data == {"token": "abc"}

    for wrong in (inner, json.dumps({"Data": inner}), "not json", json.dumps({"SecretData": {}})):
        code, status, message = refused(lambda w=wrong: raw_create(sae, w, "Opaque", "raw2"))
        assert (code, status) == ("InvalidParameter", 400)
        assert "SecretData" in message


def raw_create(sae: Any, secret_data: str, secret_type: str, name: str) -> Any:
    """CreateSecret through the SDK's generic `call_api`, with a hand-made SecretData value."""
    params = openapi_models.Params(
        action="CreateSecret",
        version="2019-05-06",
        protocol="HTTPS",
        pathname="/pop/v1/sam/secret/secret",
        method="POST",
        auth_type="AK",
        style="ROA",
        req_body_type="json",
        body_type="json",
    )
    query = {
        "NamespaceId": NS,
        "SecretName": name,
        "SecretType": secret_type,
        "SecretData": secret_data,
    }
    request = openapi_models.OpenApiRequest(query=query)
    return sae.call_api(params, request, RuntimeOptions())


def test_opaque_and_tls_secrets(sdk: SdkFactory) -> None:
    sae = sdk.sae("app")
    opaque = create(sae, "plain", {"API_KEY": "k", "db.password": "p"}, secret_type="Opaque")
    assert describe(sae, opaque.body.data.secret_id).data.secret_data == {
        "API_KEY": "k",
        "db.password": "p",
    }
    tls = {"tls.crt": b64("CERT"), "tls.key": b64("KEY")}
    made = create(sae, "cert", tls, secret_type="kubernetes.io/tls")
    assert describe(sae, made.body.data.secret_id).data.secret_type == "kubernetes.io/tls"
    code, status, message = refused(
        lambda: create(sae, "half", {"tls.crt": "x"}, secret_type="kubernetes.io/tls")
    )
    assert (code, status) == ("InvalidParameter.WithMessage", 400)
    assert "tls.key" in message


def test_auth_only_and_line_wrapped_docker_configs_are_accepted(sdk: SdkFactory) -> None:
    sae = sdk.sae("app")
    auth_only = b64(json.dumps({"auths": {PUBLIC: {"auth": b64(f"{USER}:{PASSWORD}")}}}))
    create(sae, "auth-only", {".dockerconfigjson": auth_only})
    wrapped = docker_config({PUBLIC: (USER, PASSWORD), VPC: (USER, PASSWORD)})
    wrapped = "\n".join(wrapped[i : i + 76] for i in range(0, len(wrapped), 76)) + "\n"
    create(sae, "wrapped", {".dockerconfigjson": wrapped})
    assert [s.secret_name for s in listed(sae).data.secrets] == ["auth-only", "wrapped"]


# -- refusals --------------------------------------------------------------------------------------


@pytest.mark.contract_breaches
def test_namespace_id_is_required(sdk: SdkFactory) -> None:
    sae = sdk.sae("app")
    calls = [
        lambda: create(sae, namespace=None),
        lambda: listed(sae, None),
        lambda: describe(sae, 1, None),
        lambda: update(sae, 1, pull_data(), namespace=""),
        lambda: delete(sae, 1, None),
    ]
    for call in calls:
        code, status, message = refused(call)
        assert (code, status) == ("MissingParameter", 400)
        assert '"NamespaceId"' in message


@pytest.mark.contract_breaches
def test_other_parameters_are_required(sdk: SdkFactory) -> None:
    sae = sdk.sae("app")
    missing_name = sae_models.CreateSecretRequest(
        namespace_id=NS,
        secret_type=DOCKER,
        secret_data=sae_models.CreateSecretRequestSecretData(secret_data=json.dumps(pull_data())),
    )
    no_data = sae_models.CreateSecretRequest(namespace_id=NS, secret_name="x", secret_type=DOCKER)
    for request, param in (
        (missing_name, "SecretName"),
        (no_data, "SecretData"),
    ):
        code, _, message = refused(lambda r=request: sae.create_secret(r))
        assert (code, f'"{param}"' in message) == ("MissingParameter", True)
    code, _, message = refused(lambda: describe(sae, None))
    assert (code, '"SecretId"' in message) == ("MissingParameter", True)


@pytest.mark.parametrize("namespace", ["cn-hangzhou:nope", "cn-shanghai:demo", "cn-beijing"])
def test_unknown_namespace_is_not_found(sdk: SdkFactory, namespace: str) -> None:
    """cn-beijing is not a region of the world, so it has no default namespace either."""
    sae = sdk.sae("app")
    for call in (lambda: create(sae, namespace=namespace), lambda: listed(sae, namespace)):
        assert refused(call)[:2] == ("InvalidNamespaceId.NotFound", 404)


def test_another_accounts_namespace_does_not_exist(sdk: SdkFactory) -> None:
    """Registry addressing app's namespace finds nothing, and app's secret is untouched."""
    app = sdk.sae("app")
    secret_id = create(app).body.data.secret_id
    registry = sdk.sae("registry")
    calls = [
        lambda: create(registry),
        lambda: listed(registry),
        lambda: describe(registry, secret_id),
        lambda: update(registry, secret_id, pull_data(password="stolen")),
        lambda: delete(registry, secret_id),
    ]
    for call in calls:
        assert refused(call)[:2] == ("InvalidNamespaceId.NotFound", 404)
    assert describe(app, secret_id).data.secret_data == pull_data()


@pytest.mark.parametrize(
    "name", ["1abc", "_abc", "-abc", "has space", "dot.name", "naïve", "a" * 65, "a/b"]
)
def test_bad_secret_names(sdk: SdkFactory, name: str) -> None:
    code, status, message = refused(lambda: create(sdk.sae("app"), name))
    assert (code, status) == ("InvalidParameter.WithMessage", 400)
    assert "{SecretName}" in message


def test_good_secret_names(sdk: SdkFactory) -> None:
    sae = sdk.sae("app")
    names = ["a", "registry-auth-acree", "Pull_Secret-2", "x" * 64]
    for name in names:
        create(sae, name)
    assert [s.secret_name for s in listed(sae).data.secrets] == names


@pytest.mark.parametrize("secret_type", ["kubernetes.io/basic-auth", "opaque", "dockerconfigjson"])
@pytest.mark.contract_breaches
def test_bad_secret_type(sdk: SdkFactory, secret_type: str) -> None:
    code, status, message = refused(lambda: create(sdk.sae("app"), secret_type=secret_type))
    assert (code, status) == ("InvalidParameter", 400)  # the metadata's enum
    assert '"SecretType"' in message and DOCKER in message


def _config(auths: Any) -> dict[str, str]:
    return {".dockerconfigjson": b64(json.dumps({"auths": auths}))}


MALFORMED: list[tuple[str, Any, str]] = [
    ("empty-map", {}, "empty"),
    (
        "no-dockerconfigjson-key",
        {"config.json": docker_config({PUBLIC: (USER, PASSWORD)})},
        ".dockerconfigjson",
    ),
    (
        "bad-key",
        {".dockerconfigjson": docker_config({PUBLIC: (USER, PASSWORD)}), "a b": "x"},
        "'a b'",
    ),
    ("value-not-string", {".dockerconfigjson": {"auths": {}}}, "not a string"),
    ("not-base64", {".dockerconfigjson": "{not base64!}"}, "base64"),
    ("base64-of-non-json", {".dockerconfigjson": b64("hello")}, "base64"),
    ("no-auths", {".dockerconfigjson": b64(json.dumps({"credsStore": "desktop"}))}, "auths"),
    ("empty-auths", _config({}), "auths"),
    ("entry-not-object", _config({PUBLIC: "user:pass"}), PUBLIC),
    ("no-credentials", _config({PUBLIC: {"email": "a@b.c"}}), "neither"),
    ("username-only", _config({PUBLIC: {"username": USER}}), "both username and password"),
    ("auth-not-base64", _config({PUBLIC: {"auth": "???"}}), "auth"),
    ("auth-without-colon", _config({PUBLIC: {"auth": b64("userpass")}}), "user:password"),
    (
        "auth-mismatch",
        _config({PUBLIC: {"username": USER, "password": PASSWORD, "auth": b64(f"{USER}:other")}}),
        "does not match",
    ),
]


@pytest.mark.parametrize(
    ("data", "problem"), [(d, p) for _, d, p in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
def test_malformed_docker_config_is_refused(sdk: SdkFactory, data: Any, problem: str) -> None:
    code, status, message = refused(lambda: create(sdk.sae("app"), data=data))
    assert (code, status) == ("InvalidParameter.WithMessage", 400)
    assert "The parameter is invalid {SecretData}: " in message
    assert problem in message
    assert listed(sdk.sae("app")).data.secrets == []


def test_malformed_update_leaves_the_secret_as_it_was(sdk: SdkFactory) -> None:
    sae = sdk.sae("app")
    secret_id = create(sae).body.data.secret_id
    before = describe(sae, secret_id).data
    code, status, _ = refused(lambda: update(sae, secret_id, _config({})))
    assert (code, status) == ("InvalidParameter.WithMessage", 400)
    after = describe(sae, secret_id).data
    assert (after.secret_data, after.update_time) == (before.secret_data, before.update_time)


def test_duplicate_name_in_a_namespace(sdk: SdkFactory) -> None:
    sae = sdk.sae("app")
    create(sae, "pull")
    code, status, message = refused(
        lambda: create(sae, "pull", secret_type="Opaque", data={"k": "v"})
    )
    assert (code, status) == ("Secret.AlreadyExists", 400)
    assert "pull" in message
    create(sae, "pull", namespace=OTHER_NS)
    create(sae, "Pull")
    assert [s.secret_name for s in listed(sae).data.secrets] == ["pull", "Pull"]


@pytest.mark.contract_breaches
def test_unknown_secret_id(sdk: SdkFactory) -> None:
    sae = sdk.sae("app")
    secret_id = create(sae).body.data.secret_id
    for call in (
        lambda: describe(sae, secret_id + 100),
        lambda: update(sae, secret_id + 100, pull_data()),
        lambda: delete(sae, secret_id + 100),
        lambda: describe(sae, secret_id, OTHER_NS),
        lambda: delete(sae, secret_id, OTHER_NS),
    ):
        assert refused(call)[:2] == ("InvalidSecret.NotFound", 404)
    # The metadata types SecretId as an integer in 1..1e9 (sandbox/api_meta).
    for bad in ("abc", 0, -1, 10**9 + 1, 10**17):
        code, status, message = refused(lambda b=bad: describe(sae, b))
        assert (code, status, '"SecretId"' in message) == ("InvalidParameter", 400, True)
    assert describe(sae, secret_id).data.secret_name == "registry-auth"


def test_ids_are_monotonic_and_never_reused(sdk: SdkFactory) -> None:
    sae = sdk.sae("app")
    first = create(sae, "one").body.data.secret_id
    second = create(sae, "two", namespace=OTHER_NS).body.data.secret_id
    delete(sae, second, OTHER_NS)
    third = create(sae, "three").body.data.secret_id
    assert first < second < third


# -- state: masking, isolation, durability, related applications ----------------------------------


def test_state_dump_masks_the_registry_password(sdk: SdkFactory, admin: SandboxAdmin) -> None:
    password = "pull-password-never-shown"
    data = pull_data(password=password)
    secret_id = create(sdk.sae("app"), data=data).body.data.secret_id
    state = admin.state()
    stored = state["app"]["cn-hangzhou"]["sae_secret"][str(secret_id)]
    assert stored["SecretName"] == "registry-auth"
    assert stored["SecretData"] == "******"
    dump = json.dumps(state)
    for leak in (password, b64(f"{USER}:{password}"), data[".dockerconfigjson"]):
        assert leak not in dump


def isolation_world(tmp_path: Path) -> Path:
    """The demo world plus a namespace of the registry account in the same region."""
    world = yaml.safe_load(bundled_world_path().read_text(encoding="utf-8"))
    world["regions"]["cn-hangzhou"]["sae_namespaces"].append(
        {
            "id": "cn-hangzhou:reg",
            "name": "reg",
            "account": "registry",
            "vpc": "vpc-reg",
            "vswitch": "vsw-reg-h",
            "security_group": "sg-reg",
        }
    )
    path = tmp_path / "world.yaml"
    path.write_text(yaml.safe_dump(world))
    return path


def test_accounts_number_and_see_only_their_own_secrets(tmp_path: Path) -> None:
    with SandboxProcess(world=isolation_world(tmp_path)) as process:
        factory = SdkFactory(process.endpoint)
        app, registry = factory.sae("app"), factory.sae("registry")
        app_id = create(app, "shared-name").body.data.secret_id
        reg_id = create(registry, "shared-name", namespace="cn-hangzhou:reg").body.data.secret_id
        assert app_id == reg_id == 1
        assert [s.namespace_id for s in listed(registry, "cn-hangzhou:reg").data.secrets] == [
            "cn-hangzhou:reg"
        ]
        update(registry, reg_id, pull_data(password="registry-own"), "cn-hangzhou:reg")
        assert describe(app, app_id).data.secret_data == pull_data()
        assert refused(lambda: describe(app, app_id, "cn-hangzhou:reg"))[:2] == (
            "InvalidNamespaceId.NotFound",
            404,
        )
        delete(registry, reg_id, "cn-hangzhou:reg")
        assert [s.secret_id for s in listed(app).data.secrets] == [app_id]


def put_app(state: Path, app_id: str, name: str, pull_secrets: str | None) -> None:
    """An application document as `sae.apps` stores it, written while the sandbox is stopped."""
    store = Store(state)
    config = {"ImageUrl": f"{PUBLIC}/shop/web:1.0"}
    if pull_secrets is not None:
        config["ImagePullSecrets"] = pull_secrets
    with store.transaction() as tx:
        tx.put(
            Scope(UIDS["app"], "cn-hangzhou"),
            secrets.APP,
            app_id,
            {"AppId": app_id, "AppName": name, "NamespaceId": NS, "config": config},
        )
    store.close()


def test_related_apps_block_deletion_and_ids_survive_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    first = SandboxProcess(state=state)
    try:
        first.start()
        sae = SdkFactory(first.endpoint).sae("app")
        used = create(sae, "used").body.data.secret_id
        spare = create(sae, "spare").body.data.secret_id
        gone = create(sae, "gone").body.data.secret_id
        delete(sae, gone)
    finally:
        first.kill()
    put_app(state, "app-1", "web", str(used))
    put_app(state, "app-2", "worker", None)

    with SandboxProcess(state=state) as second:
        sae = SdkFactory(second.endpoint).sae("app")
        relations = {
            s.secret_id: [(a.app_id, a.app_name) for a in s.relate_apps]
            for s in listed(sae).data.secrets
        }
        assert relations == {used: [("app-1", "web")], spare: []}
        [related] = describe(sae, used).data.relate_apps
        assert (related.app_id, related.app_name) == ("app-1", "web")

        code, status, message = refused(lambda: delete(sae, used))
        assert (code, status) == ("Secret.InUse", 400)
        assert "web" in message
        assert delete(sae, spare).data.secret_id == spare
        assert create(sae, "after-restart").body.data.secret_id == gone + 1


def test_find_secret_and_docker_logins(tmp_path: Path) -> None:
    """The helpers the image-pull judgment uses, against a store written by the handlers' shape."""
    store = Store(tmp_path / "state.db")
    doc = {
        "SecretId": 7,
        "SecretName": "pull",
        "SecretType": DOCKER,
        "NamespaceId": NS,
        "SecretData": {".dockerconfigjson": docker_config({f"https://{PUBLIC}/v1/": (USER, "pw")})},
        "CreateTime": 1,
        "UpdateTime": 1,
    }
    with store.transaction() as tx:
        tx.put(Scope(UIDS["app"], "cn-hangzhou"), secrets.SECRET, "7", doc)
        found = secrets.find_secret(tx, UIDS["app"], NS, 7)
        assert found == doc
        assert secrets.find_secret(tx, UIDS["app"], OTHER_NS, 7) is None
        assert secrets.find_secret(tx, UIDS["registry"], NS, 7) is None
        assert secrets.find_secret(tx, UIDS["app"], NS, 8) is None
    store.close()
    assert secrets.docker_logins(doc) == {PUBLIC: (USER, "pw")}
    assert secrets.docker_logins({**doc, "SecretType": "Opaque"}) == {}
    assert secrets.docker_logins({**doc, "SecretData": {".dockerconfigjson": "x"}}) == {}
