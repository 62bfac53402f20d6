"""Independent cloud reads at once, in threads that carry the caller's context.

A step's inspection makes reads that need only what an earlier read told it (the namespace's VPC)
and not each other (the vSwitch, the VPC's attributes, its NAT gateways): one after another they
add up on the deploy's critical path. The threads run each job in a copy of the caller's context,
so Prefect's run context, the SAE quota pacing and the in-flight record go along.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")


def together(
    first: Callable[[], A], second: Callable[[], B], third: Callable[[], C]
) -> tuple[Future[A], Future[B], Future[C]]:
    """Run three jobs at once; their futures, all done (the caller decides which error counts:
    each future holds its own)."""
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="together") as pool:
        one = pool.submit(contextvars.copy_context().run, first)
        two = pool.submit(contextvars.copy_context().run, second)
        three = pool.submit(contextvars.copy_context().run, third)
    return one, two, three
