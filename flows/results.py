"""How the flows persist their results: JSON, read back by any client that has the project.

`run_deployment` callers get the flow's own DeployResult (FleetResult, ...) back from
`flow_run.state.result()`: each result names its class (`flows.cross_account_deploy.DeployResult`),
which is why prefect.yaml names its entrypoints as modules. A failed run's error is kept as its
type and message; Prefect rebuilds it as `ErrorType(message)`, and an error whose constructor
takes more (SpecError, CloudError) comes back as a `RunError` that names its type instead of a
TypeError.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from prefect.serializers import JSONSerializer, prefect_json_object_decoder
from prefect.states import Failed

RESULT_SERIALIZER = JSONSerializer(object_decoder="flows.results.decode")


class RunError(Exception):
    """A finished run's error read back from its result: `<error type>: <message>`."""


def decode(data: dict[str, Any]) -> Any:
    """Prefect's JSON object hook, with errors it cannot rebuild kept as RunError."""
    try:
        return prefect_json_object_decoder(data)
    except TypeError:
        if "__exc_type__" not in data:
            raise
        return RunError(f"{data['__exc_type__']}: {data.get('message', '')}")


F = TypeVar("F", bound=Callable[..., Any])


def expected_failures(*kinds: type[Exception]) -> Callable[[F], F]:
    """A flow that raises one of `kinds` (a blocked plan, a failed change order with its
    diagnosis, a bad spec: errors whose message says it all) ends Failed with that message as
    its state message and the error as its result, as if it had raised, but without the
    engine's traceback in the run's log (on a worker: two of them, and "Engine execution exited
    with unexpected exception"). `state.result()` and subflow callers still get the error
    raised."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except kinds as exc:
                return Failed(message=str(exc), data=exc)

        # Prefect validates the parameters against the signature, resolving names in the
        # wrapper's module: resolved here, in the flow's.
        run.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
        return cast("F", run)

    return wrap
