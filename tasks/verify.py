"""Is the app really serving? A successful change order is not proof: instances must be running.

The instance container statuses (`{"Running": 2}`, `{"ErrImagePull": 2}`) are also the first
clue of a failed pull, which the failure diagnosis uses.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from alibabacloud_sae20190506 import models as sae_models
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from blocks import AlibabaCloudCredentials
from crossdeploy.cloud import call

_PAGE_SIZE = 100


@dataclass(frozen=True)
class VerifyResult:
    app_id: str
    ok: bool
    current_status: str
    """RUNNING, STOPPED or UNKNOWN (DescribeApplicationStatus)."""
    running_instances: int
    replicas: int
    last_change_order_status: str
    instance_statuses: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """`2 of 2 instances running` or `0 of 2 instances running: 2 x ErrImagePull` (with ×)."""  # noqa: RUF002
        text = f"{self.running_instances} of {self.replicas} instances running"
        others = {k: v for k, v in self.instance_statuses.items() if k != "Running"}
        if others:
            parts = (f"{n} × {status}" for status, n in sorted(others.items()))  # noqa: RUF001
            text += ": " + ", ".join(parts)
        return text


def verify_application(
    creds_a: AlibabaCloudCredentials, app_id: str, replicas: int, *, wait_seconds: float = 0
) -> VerifyResult:
    """RUNNING with `replicas` running instances; retried for up to `wait_seconds`."""
    sae = creds_a.get_client("sae")
    deadline = time.monotonic() + wait_seconds
    while True:
        request = sae_models.DescribeApplicationStatusRequest(app_id=app_id)
        status = call(
            "sae:DescribeApplicationStatus", sae.describe_application_status, request
        ).body.data
        running = int(status.running_instances or 0)
        current = str(status.current_status or "UNKNOWN")
        ok = current == "RUNNING" and running == replicas and _normal(status.sub_status)
        # RunningInstances counts the instances whose container runs, so a healthy app needs no
        # listing of them; one that is not healthy is listed for what its instances are doing.
        statuses = {"Running": running} if ok else _statuses(sae, app_id)
        if ok or time.monotonic() >= deadline:
            return VerifyResult(
                app_id,
                ok,
                current,
                running,
                replicas,
                str(status.last_change_order_status or ""),
                statuses,
            )
        time.sleep(1.0)


def app_instances(creds_a: AlibabaCloudCredentials, app_id: str) -> tuple[Any, ...]:
    """Every instance of the app, over all its groups (read once, for both questions below)."""
    return tuple(_instances(creds_a.get_client("sae"), app_id))


def count_statuses(instances: Iterable[Any]) -> dict[str, int]:
    """How many instances are in each container status."""
    return dict(Counter(str(i.instance_container_status or "Unknown") for i in instances))


def running_images(instances: Iterable[Any]) -> frozenset[str]:
    """The images the running instances run: images known to have pulled and started."""
    return frozenset(
        str(i.image_url)
        for i in instances
        if i.instance_container_status == "Running" and i.image_url
    )


@task(name="verify", cache_policy=NO_CACHE)
def verify_app(
    creds_a: AlibabaCloudCredentials, app_id: str, replicas: int, *, wait_seconds: float = 30
) -> VerifyResult:
    """Verify the app runs as many instances as wanted, and log what they are doing."""
    result = verify_application(creds_a, app_id, replicas, wait_seconds=wait_seconds)
    logger = get_run_logger()
    (logger.info if result.ok else logger.error)("%s", result.summary())
    return result


def _normal(sub_status: object) -> bool:
    """SubStatus is not "running but has error" (the SDK's RUNNING_BUT_HAS_ERROR, Terraform's
    runningButHasError: compared without case or underscores)."""
    return str(sub_status or "").replace("_", "").lower() != "runningbuthaserror"


def _statuses(sae: Any, app_id: str) -> dict[str, int]:
    return count_statuses(_instances(sae, app_id))


def _instances(sae: Any, app_id: str) -> Iterator[Any]:
    """Every instance of the app, over all its groups and pages."""
    request = sae_models.DescribeApplicationGroupsRequest(app_id=app_id)
    groups = call("sae:DescribeApplicationGroups", sae.describe_application_groups, request)
    for group in groups.body.data or []:
        page = 1
        while True:
            listing = sae_models.DescribeApplicationInstancesRequest(
                app_id=app_id, group_id=group.group_id, current_page=page, page_size=_PAGE_SIZE
            )
            data = call(
                "sae:DescribeApplicationInstances", sae.describe_application_instances, listing
            ).body.data
            instances = list(data.instances or []) if data else []
            yield from instances
            if not instances or page * _PAGE_SIZE >= int(data.total_size or 0):
                break
            page += 1
