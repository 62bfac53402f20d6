"""What every deploy step is, so flows compose steps without knowing what each one does.

A step is one module of `tasks/` with one `Step` object, `STEP`, that knows its own resources:

    permissions  the RAM actions it calls and their resources, per phase (crossdeploy/permissions)
    inspect   read the accounts and decide (a state with plan rows); writes nothing
    apply     write only what the state says differs (a result with the Changes made)
    intents   the writes `apply` is about to make, for the write-ahead ledger (ledger.Intent)
    confirm   at teardown, whether an announced write landed and is ours (the Changes to reverse)
    remove    undo this step's recorded Changes, and nothing else
    reverses  the (resource type, action) pairs `remove` undoes: what the ledger keeps

Its Prefect tasks (`inspect_task`, `apply_task`, `remove_task`) are made here, once per step.
A step reads the states of the steps it `needs` from the `Inspection` so far; `Steps` is the
ordered list a flow walks (flows/steps.py), and what the ledger asks which changes to keep.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, Protocol, Self, TypeVar

from prefect import Task, task
from prefect.cache_policies import NO_CACHE

from blocks import AcrRegistryLogin, AlibabaCloudCredentials
from crossdeploy.cloud import CloudError
from crossdeploy.in_flight import doing
from crossdeploy.ledger import Intent
from crossdeploy.permissions import Arns, Needs
from crossdeploy.plan import Change, PlanRow
from crossdeploy.spec import DeploySpec


@dataclass(frozen=True)
class Accounts:
    """Both accounts' credentials (each in the region its step acts in) and uids, resolved once
    per run."""

    app: AlibabaCloudCredentials
    registry: AlibabaCloudCredentials
    app_uid: str
    registry_uid: str
    login: AcrRegistryLogin | None = None
    app_arn: str = ""
    """The identity account A's block acts as (GetCallerIdentity's Arn)."""
    registry_arn: str = ""

    @property
    def uids(self) -> dict[str, str]:
        return {"A": self.app_uid, "B": self.registry_uid}

    def resources(self, spec: DeploySpec) -> dict[str, Arns]:
        """Each account's ARNs, in the region its steps act in (as `resolve_accounts` sets)."""
        return {
            "A": Arns(self.app_uid, spec.app.region),
            "B": Arns(self.registry_uid, spec.image.ref.region),
        }

    @property
    def arns(self) -> dict[str, str]:
        return {"A": self.app_arn, "B": self.registry_arn}


class PermissionDeniedError(Exception):
    """A step's call refused for want of a RAM permission, in words: which account, which
    identity, which action on which resource, and that granting it is the fix. (One message
    argument, so a finished run's result rebuilds it.)"""

    @classmethod
    def of(cls, step: str, account: str, accounts: Accounts, error: CloudError) -> Self:
        denied = error.denied
        assert denied is not None
        action = denied.action or error.action
        who = accounts.arns[account] or f"the identity of account {account}'s block"
        on = f" on {denied.resource}" if denied.resource else ""
        why = "a Deny statement refuses it" if denied.explicit else "no policy of it allows it"
        return cls(
            f"{step}: account {account} ({accounts.uids[account]}) refused {who} the action "
            f"{action}{on} ({error.code}: {why}). Grant {who} {action}{on} in account "
            f"{account}'s RAM console (`crossdeploy permissions SPEC` prints every permission "
            "the run needs), then run again: nothing after this step was written."
        )


R = TypeVar("R")


class Inspected(Protocol):
    """A step's state: what `plan` shows of it."""

    @property
    def rows(self) -> tuple[PlanRow, ...]: ...


class Landed(Protocol):
    """A step's apply result: at least the Changes it made."""

    @property
    def changes(self) -> tuple[Change, ...]: ...


@dataclass(frozen=True)
class Applied:
    """The result of a step whose apply yields nothing but Changes."""

    changes: tuple[Change, ...] = ()


StateT = TypeVar("StateT", bound=Inspected)
ResultT = TypeVar("ResultT", bound=Landed)


@dataclass(frozen=True)
class Inspection:
    """Every step's state after inspection, by step name, in step order."""

    states: Mapping[str, Inspected] = field(default_factory=dict)
    earlier: Mapping[str, Inspected] = field(default_factory=dict)
    """What this run's first inspection found, when this one re-checks (the failure diagnosis):
    a step may reuse from it what cannot have changed since and re-read only the rest."""

    def of(self, step: Step[StateT, Any]) -> StateT:
        """The state of a step that was inspected (KeyError names it when it was not)."""
        state: Any = self.states[step.name]
        return state  # type: ignore[no-any-return]  # each step stores its own state type

    def get(self, step: Step[StateT, Any]) -> StateT | None:
        """The state of a step the deploy may leave out (role and policy, the secret)."""
        return self.of(step) if step.name in self.states else None

    def before(self, step: Step[StateT, Any]) -> StateT | None:
        """The step's state as the run's first inspection found it, when this is a re-check."""
        state: Any = self.earlier.get(step.name)
        return state  # type: ignore[no-any-return]  # each step stores its own state type

    def with_state(self, step: Step[StateT, Any], state: StateT) -> Inspection:
        return Inspection({**self.states, step.name: state})

    @property
    def rows(self) -> list[PlanRow]:
        return [row for state in self.states.values() for row in state.rows]


class Step(Generic[StateT, ResultT]):
    """One step of the deploy; subclasses set the class attributes and override what they do."""

    name: ClassVar[str]
    """The step as plan rows name it (`role`, `whitelist`, ...)."""
    task_name: ClassVar[str]
    """Its Prefect tasks: `inspect-<task_name>`, `<task_name>`, `remove-<task_name>`."""
    account: ClassVar[Literal["A", "B"]]
    needs: ClassVar[tuple[str, ...]] = ()
    """Steps whose inspected state `inspect` reads (inspected first)."""
    after: ClassVar[tuple[str, ...]] = ()
    """Steps whose writes must have landed before `apply` runs."""
    writes: ClassVar[bool] = True
    fleet_wide: ClassVar[bool] = False
    """One for every app of a fleet (applied once; blocked, it blocks the whole fleet)."""
    reverses: ClassVar[frozenset[tuple[str, str]]] = frozenset()
    compacted_by: ClassVar[frozenset[str]] = frozenset()
    """Resource types whose recording can make earlier entries `needless`."""

    inspect_task: Task[[Accounts, DeploySpec, Inspection], StateT]
    apply_task: Task[[Accounts, StateT], ResultT]
    remove_task: Task[[Accounts, DeploySpec, list[Change]], list[Change]]

    def __init__(self) -> None:
        # Run names say the step and what it acts on, so each log line names both
        # (format fields are the tasks' parameters).
        uid = "{accounts.app_uid}" if self.account == "A" else "{accounts.registry_uid}"
        self.inspect_task = task(
            name=f"inspect-{self.task_name}",
            task_run_name=f"inspect {self.name} of {{spec.app.name}} in account {uid}",
            cache_policy=NO_CACHE,
        )(self._worded(self.inspect, "inspect"))
        self.apply_task = task(
            name=self.task_name,
            task_run_name=f"apply {self.name} in account {uid}",
            cache_policy=NO_CACHE,
        )(self._worded(self.apply, "apply"))
        self.remove_task = task(
            name=f"remove-{self.task_name}",
            task_run_name=f"remove {self.name} of {{spec.app.name}} in account {uid}",
            cache_policy=NO_CACHE,
        )(self._worded(self.remove, "remove"))

    def _worded(self, fn: Callable[..., R], verb: str) -> Callable[..., R]:
        """`fn`, in progress as `<verb> <step>` while it runs (crossdeploy/in_flight.py), with a
        refusal for want of a permission told in words (PermissionDeniedError)."""

        @functools.wraps(fn)
        def run(accounts: Accounts, *args: Any, **kwargs: Any) -> R:
            try:
                with doing(f"{verb} {self.name}"):
                    return fn(accounts, *args, **kwargs)
            except CloudError as exc:
                if exc.denied is None:
                    raise
                raise PermissionDeniedError.of(self.name, self.account, accounts, exc) from None

        return run

    def __repr__(self) -> str:
        return f"<step {self.name}>"

    def wanted(self, spec: DeploySpec, accounts: Accounts) -> bool:
        """Whether this deploy has the step at all (the access method decides some)."""
        return True

    def permissions(self, spec: DeploySpec, arns: Arns) -> Needs:
        """The RAM permissions its calls need in its account (`arns`), per phase: every call it
        may make for this spec, each on the resource RAM checks. `crossdeploy permissions`
        prints them and the preflight checks them before anything is written."""
        return Needs()

    def inspect(self, accounts: Accounts, spec: DeploySpec, found: Inspection) -> StateT:
        raise NotImplementedError

    def apply(self, accounts: Accounts, state: StateT) -> ResultT:
        raise NotImplementedError

    def remaining(self, state: StateT, before: Sequence[StateT]) -> StateT:
        """What is left to write of `state` after the same step applied `before` (the fleet
        applies a step once per namespace); by default all of it."""
        return state

    def landed(self, state: StateT, result: ResultT) -> StateT:
        """The state once `apply` has run, as later steps read it (an id the write assigned)."""
        return state

    def remove(self, accounts: Accounts, spec: DeploySpec, changes: list[Change]) -> list[Change]:
        return []

    def intents(self, state: StateT) -> list[Intent]:
        return []

    def confirm(self, accounts: Accounts, intent: Intent) -> list[Change]:
        """The Changes to reverse for an intent no run recorded; by default the intent's own
        (its remove touches only what is there)."""
        return [intent.change]

    def needless(self, kept: Sequence[Change]) -> set[Change]:
        """Recorded Changes that teardown would find gone anyway (dropped from the ledger)."""
        return set()

    @property
    def resource_types(self) -> frozenset[str]:
        return frozenset(kind for kind, _ in self.reverses)


class Steps(Sequence[Step[Any, Any]]):
    """The steps of a deploy in order: inspection and apply walk it forwards, teardown backwards;
    the ledger asks it which Changes to keep (crossdeploy/ledger.py's Retention)."""

    def __init__(self, *steps: Step[Any, Any]) -> None:
        self._steps = steps
        self._by_type = {kind: step for step in steps for kind in step.resource_types}

    def __getitem__(self, index: Any) -> Any:
        return self._steps[index]

    def __len__(self) -> int:
        return len(self._steps)

    def __iter__(self) -> Iterator[Step[Any, Any]]:
        return iter(self._steps)

    def kept(self, change: Change) -> bool:
        owner = self._by_type.get(change.resource_type)
        return owner is not None and (change.resource_type, change.action) in owner.reverses

    def needless(self, kept: Sequence[Change]) -> set[Change]:
        return {change for step in self._steps for change in step.needless(kept)}

    def compacts(self, change: Change) -> bool:
        return any(change.resource_type in step.compacted_by for step in self._steps)

    def confirm(self, accounts: Accounts, pending: Sequence[Intent]) -> list[Change]:
        """The Changes teardown reverses for intents no run recorded, each asked of its step."""
        out: list[Change] = []
        for intent in pending:
            owner = self._by_type.get(intent.change.resource_type)
            out += owner.confirm(accounts, intent) if owner else [intent.change]
        return out
