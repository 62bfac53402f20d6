"""Turn a world file into the initial store contents; each service seeds its own resources."""

from __future__ import annotations

from sandbox.services import cr, ram, sts, vpc
from sandbox.services.sae import namespaces
from sandbox.store import Tx
from sandbox.world import World


def seed_world(tx: Tx, world: World) -> None:
    for service in (sts, ram, vpc, cr, namespaces):
        service.seed(tx, world)
