"""The sandbox: signed requests served per second (GetCallerIdentity, ACS3-HMAC-SHA256 signed by
the official SDK), from several client threads, against one client thread as the baseline.
"""

from __future__ import annotations

import time

from alibabacloud_sts20150401.client import Client as StsClient

from bench.common import Cloud, Figure, clouds, fmt, parallel, sdk_config

THREADS = 8


def _loop(cloud: Cloud, seconds: float) -> int:
    client = StsClient(sdk_config(cloud, "app"))
    done, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        client.get_caller_identity()
        done += 1
    return done


def _rate(cloud: Cloud, threads: int, seconds: float) -> float:
    before = len(cloud.admin.requests())
    started = time.monotonic()
    parallel([lambda: _loop(cloud, seconds) for _ in range(threads)])
    elapsed = time.monotonic() - started
    served = [e for e in cloud.admin.requests()[before:] if e["status"] == 200]
    return len(served) / elapsed


def run(quick: bool = False) -> list[Figure]:
    seconds = 3.0 if quick else 8.0
    with clouds("rps", save_blocks=False) as (cloud,):
        single = _rate(cloud, 1, seconds)
        many = _rate(cloud, THREADS, seconds)
    return [
        Figure(
            "sandbox",
            "signed requests served per second",
            fmt(many, digits=0),
            fmt(single, digits=0),
            f"{THREADS} client threads against 1",
        )
    ]
