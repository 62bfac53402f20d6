"""SAE secrets through the official SDK as a user creates them: a registry login of account B for
the demo namespace, as the `kubernetes.io/dockerconfigjson` secret an app pulls with."""

from __future__ import annotations

import json
from typing import Any

from alibabacloud_sae20190506 import models as sae_models

from tests.support.pull_worlds import docker_config

NS = "cn-hangzhou:demo"
PUBLIC = "demo-registry.cn-hangzhou.cr.aliyuncs.com"
VPC = "demo-registry-vpc.cn-hangzhou.cr.aliyuncs.com"
USER = "registry@2222222222222222"
PASSWORD = "sandbox-registry-login"
DOCKER = "kubernetes.io/dockerconfigjson"


def pull_data(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    return {".dockerconfigjson": docker_config({PUBLIC: (user, password), VPC: (user, password)})}


def create(
    sae: Any,
    name: str = "registry-auth",
    data: dict[str, str] | None = None,
    *,
    secret_type: str = DOCKER,
    namespace: str | None = NS,
) -> Any:
    return sae.create_secret(
        sae_models.CreateSecretRequest(
            namespace_id=namespace,
            secret_name=name,
            secret_type=secret_type,
            secret_data=sae_models.CreateSecretRequestSecretData(
                secret_data=json.dumps(pull_data() if data is None else data)
            ),
        )
    )


def update(sae: Any, secret_id: int, data: dict[str, str], namespace: str = NS) -> Any:
    return sae.update_secret(
        sae_models.UpdateSecretRequest(
            namespace_id=namespace,
            secret_id=secret_id,
            secret_data=sae_models.UpdateSecretRequestSecretData(secret_data=json.dumps(data)),
        )
    )
