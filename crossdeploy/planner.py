"""The inspection phase: every step read and compared, both accounts at once, no writes.

`inspect_all` is what `plan` shows, what `deploy` applies from, and what the failure diagnosis
re-runs to find the root cause. Account A's discovery runs alongside account B's image, role and
policy checks (Prefect tasks on the flow's task runner).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE

from blocks import AcrRegistryLogin, AlibabaCloudCredentials
from crossdeploy.cloud import CloudError, call
from crossdeploy.plan import Plan, PlanRow
from crossdeploy.spec import DeploySpec
from tasks.application import ApplicationState, inspect_application
from tasks.image import ImageState, inspect_image
from tasks.network import NetworkState, inspect_network
from tasks.pull_policy import PullPolicyState, inspect_pull_policy
from tasks.pull_role import PullRoleState, inspect_pull_role
from tasks.registry_secret import RegistrySecretState, inspect_registry_secret
from tasks.whitelist import WhitelistState, inspect_whitelist


@dataclass(frozen=True)
class Accounts:
    """Both accounts' credentials and uids, resolved once per run."""

    app: AlibabaCloudCredentials
    registry: AlibabaCloudCredentials
    app_uid: str
    registry_uid: str
    login: AcrRegistryLogin | None = None

    @property
    def uids(self) -> dict[str, str]:
        return {"A": self.app_uid, "B": self.registry_uid}


@dataclass(frozen=True)
class Inspection:
    network: NetworkState
    image: ImageState
    whitelist: WhitelistState
    role: PullRoleState | None
    policy: PullPolicyState | None
    secret: RegistrySecretState | None
    app: ApplicationState

    @property
    def rows(self) -> list[PlanRow]:
        steps: list[Any] = [self.network, self.image, self.whitelist, self.role, self.policy]
        steps += [self.secret, self.app]
        return [row for step in steps if step is not None for row in step.rows]


class AccountError(ValueError):
    """A block the spec names is missing or cannot act; the message starts with its field."""


@task(name="identity", cache_policy=NO_CACHE)
def account_uid(creds: AlibabaCloudCredentials, field: str = "", name: str = "") -> str:
    """The account a credentials block acts in (after any role it assumes); a block that cannot
    act is an AccountError naming the spec `field` that gave block `name`."""
    try:
        identity = call("sts:GetCallerIdentity", creds.get_client("sts").get_caller_identity)
    except CloudError as exc:
        if not field:
            raise
        raise AccountError(f"{field}: block {name!r} cannot act in its account: {exc}") from None
    return str(identity.body.account_id)


_ROLE_ARN = re.compile(r"^acs:ram::\d+:role/[A-Za-z0-9.-]{1,64}$")
_BlockT = TypeVar("_BlockT", AlibabaCloudCredentials, AcrRegistryLogin)


def _load(kind: type[_BlockT], name: str, field: str) -> _BlockT:
    """The block, or an AccountError naming the spec field (Prefect says only "Unable to find")."""
    try:
        block = kind.load(name)
    except ValueError:
        block = None
    if not isinstance(block, kind):
        raise AccountError(
            f"{field}: there is no {kind.get_block_type_name()} block named {name!r} "
            f"(prefect block ls lists them)"
        )
    arn = block.role_arn if isinstance(block, AlibabaCloudCredentials) else None
    if arn is not None and not _ROLE_ARN.match(arn):
        raise AccountError(
            f"{field}: block {name!r} has role_arn {arn!r}, which is not "
            "acs:ram::<account id>:role/<role name>"
        )
    return block


def resolve_accounts(spec: DeploySpec) -> Accounts:
    """Load the spec's blocks and learn both account uids (concurrently); AccountError names
    the spec field of a block that is missing, cannot act, or acts in the other one's account
    (every missing block at once, one line each)."""
    names, login_name = spec.accounts, spec.access.registry_login
    problems: list[str] = []

    def load(kind: type[_BlockT], name: str, field: str) -> _BlockT | None:
        try:
            return _load(kind, name, field)
        except AccountError as exc:
            problems.append(str(exc))
            return None

    app = load(AlibabaCloudCredentials, names.app, "accounts.app")
    registry = load(AlibabaCloudCredentials, names.registry, "accounts.registry")
    login = load(AcrRegistryLogin, login_name, "access.registry_login") if login_name else None
    if problems or app is None or registry is None:
        raise AccountError("\n".join(problems))
    uid_a = account_uid.submit(app, "accounts.app", names.app)
    uid_b = account_uid.submit(registry, "accounts.registry", names.registry)
    app_uid, registry_uid = uid_a.result(), uid_b.result()
    if app_uid == registry_uid:
        raise AccountError(
            f"accounts.registry: block {names.registry!r} acts in account {registry_uid}, the "
            f"same account as accounts.app ({names.app!r}); name the block of the account that "
            "owns the image (check its keys and role_arn)"
        )
    # SAE, VPC and CR answer for the region their endpoint serves: A acts in the app's region,
    # B in the image's (its instance, ACL and VPC links live there), whatever the blocks default to.
    return Accounts(
        app.in_region(spec.app.region),
        registry.in_region(spec.image.ref.region),
        app_uid,
        registry_uid,
        login,
    )


_network = task(name="inspect-network", cache_policy=NO_CACHE)(inspect_network)
_image = task(name="inspect-image", cache_policy=NO_CACHE)(inspect_image)
_role = task(name="inspect-pull-role", cache_policy=NO_CACHE)(inspect_pull_role)
_policy = task(name="inspect-pull-policy", cache_policy=NO_CACHE)(inspect_pull_policy)
_secret = task(name="inspect-registry-secret", cache_policy=NO_CACHE)(inspect_registry_secret)


def inspect_all(spec: DeploySpec, accounts: Accounts) -> Inspection:
    """Read both accounts and decide every step; nothing is written."""
    network_f = _network.submit(accounts.app, spec)
    image_f = _image.submit(accounts.registry, spec)
    role_f = None
    if spec.access.method == "ram-role":
        role_f = _role.submit(
            accounts.registry, spec, app_uid=accounts.app_uid, registry_uid=accounts.registry_uid
        )
    network, image = network_f.result(), image_f.result()
    policy_f = None
    if spec.access.method == "ram-role":
        policy_f = _policy.submit(
            accounts.registry,
            spec,
            app_uid=accounts.app_uid,
            registry_uid=accounts.registry_uid,
            instance_id=image.instance_id,
        )
    secret: RegistrySecretState | None = None
    if accounts.login is not None:
        secret = _secret.submit(
            accounts.app, spec, namespace_id=network.namespace_id, login=accounts.login
        ).result()
    whitelist = inspect_whitelist(
        accounts.registry,
        spec,
        instance_id=image.instance_id,
        egress_ips=network.egress_ips,
        vpc_id=network.vpc_id,
        app_cen_ids=network.cen_ids,
    )
    role = role_f.result() if role_f else None
    policy = policy_f.result() if policy_f else None
    app = inspect_application(
        accounts.app,
        spec,
        role_arn=role.role_arn if role else None,
        secret_id=secret.secret_id if secret else None,
        instance_id=image.instance_id,
        vpc_id=network.vpc_id or None,
        vswitch_id=network.vswitch_id or None,
    )
    return Inspection(network, image, whitelist, role, policy, secret, app)


def make_plan(spec: DeploySpec, accounts: Accounts, inspection: Inspection) -> Plan:
    title = f"Deploy {spec.app.name} ({spec.app.namespace_id}) from {spec.image.url}"
    subtitle = (
        f"account A {accounts.app_uid} ({spec.accounts.app})  ·  "
        f"account B {accounts.registry_uid} ({spec.accounts.registry})"
    )
    return Plan(title, subtitle, inspection.rows)
