"""The inspection phase: both accounts resolved, then every step read and compared, no writes.

`inspect_all` is what `plan` shows, what `deploy` applies from, and what the failure diagnosis
re-runs to find the root cause. Each step's inspection is a Prefect task started as soon as the
steps it `needs` are inspected, so account A's network runs alongside account B's image and role.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture

from blocks import AcrRegistryLogin, AlibabaCloudCredentials
from crossdeploy.cloud import CloudError, call
from crossdeploy.plan import Plan, PlanRow
from crossdeploy.spec import DeploySpec
from flows.steps import STEPS
from tasks.step import Accounts, Inspected, Inspection, Step


class AccountError(ValueError):
    """A block the spec names is missing or cannot act; the message starts with its field."""


@task(name="identity", cache_policy=NO_CACHE)
def account_identity(
    creds: AlibabaCloudCredentials, field: str = "", name: str = ""
) -> tuple[str, str]:
    """(account uid, identity ARN) a credentials block acts as (after any role it assumes); a
    block that cannot act is an AccountError naming the spec `field` that gave block `name`."""
    try:
        identity = call("sts:GetCallerIdentity", creds.get_client("sts").get_caller_identity)
    except CloudError as exc:
        if not field:
            raise
        if exc.unreachable is not None:
            raise AccountError(f"{field}: block {name!r}: STS {exc.unreachable}") from None
        raise AccountError(f"{field}: block {name!r} cannot act in its account: {exc}") from None
    return str(identity.body.account_id), str(identity.body.arn or "")


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
    futures = {
        "accounts.app": account_identity.submit(app, "accounts.app", names.app),
        "accounts.registry": account_identity.submit(registry, "accounts.registry", names.registry),
    }
    identities: dict[str, tuple[str, str]] = {}
    for field, future in futures.items():  # both accounts' failures at once
        try:
            identities[field] = future.result()
        except AccountError as exc:
            problems.append(str(exc))
    if problems:
        raise AccountError("\n".join(problems))
    app_uid, app_arn = identities["accounts.app"]
    registry_uid, registry_arn = identities["accounts.registry"]
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
        app_arn=app_arn,
        registry_arn=registry_arn,
    )


def inspect_all(
    spec: DeploySpec,
    accounts: Accounts,
    steps: Sequence[Step[Any, Any]] = STEPS,
    earlier: Inspection | None = None,
) -> Inspection:
    """Read both accounts and decide every step the deploy has; nothing is written. The first
    step that fails raises its own error. `earlier`: this run's first inspection, when this
    one re-checks (steps then re-read only what can have changed, `Inspection.before`)."""
    futures: dict[str, PrefectFuture[Any]] = {}
    before = earlier.states if earlier is not None else {}
    for step in steps:
        if step.wanted(spec, accounts):
            upstream = {name: futures[name] for name in step.needs if name in futures}
            # Prefect resolves the futures to their states when the task starts.
            found = Inspection(cast(Mapping[str, Inspected], upstream), before)
            futures[step.name] = step.inspect_task.submit(accounts, spec, found)
    return Inspection({name: future.result() for name, future in futures.items()})


def make_plan(
    spec: DeploySpec, accounts: Accounts, inspection: Inspection, first: Sequence[PlanRow] = ()
) -> Plan:
    title = f"Deploy {spec.app.name} ({spec.app.namespace_id}) from {spec.image.url}"
    subtitle = (
        f"account A {accounts.app_uid} ({spec.accounts.app})  ·  "
        f"account B {accounts.registry_uid} ({spec.accounts.registry})"
    )
    return Plan(title, subtitle, [*first, *inspection.rows])
