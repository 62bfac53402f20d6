"""How the flows persist their results: JSON, read back by any client that has the project.

`run_deployment` callers get the flow's own DeployResult (FleetResult, ...) back from
`flow_run.state.result()`: each result names its class (`flows.cross_account_deploy.DeployResult`),
which is why prefect.yaml names its entrypoints as modules. A failed run's error is kept as its
type and message; Prefect rebuilds it as `ErrorType(message)`, and an error whose constructor
takes more (SpecError, CloudError) comes back as a `RunError` that names its type instead of a
TypeError.
"""

from __future__ import annotations

from typing import Any

from prefect.serializers import JSONSerializer, prefect_json_object_decoder

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
