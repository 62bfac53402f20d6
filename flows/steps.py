"""The steps of a deploy, in the order flows walk them: inspection and apply forwards (a step
after those it `needs`), teardown backwards. A new step is one module in tasks/ and one entry
here."""

from __future__ import annotations

from tasks import application, image, network, pull_policy, pull_role, registry_secret, whitelist
from tasks.step import Steps

STEPS = Steps(
    network.STEP,
    image.STEP,
    whitelist.STEP,
    pull_role.STEP,
    pull_policy.STEP,
    registry_secret.STEP,
    application.STEP,
)
