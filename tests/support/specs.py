"""Deploy specs for tests: the demo app's spec, and variants of it with some fields changed."""

from __future__ import annotations

import copy
from typing import Any

from crossdeploy.spec import DeploySpec, parse_spec

DEMO_SPEC: dict[str, Any] = {
    "accounts": {"app": "sandbox-app", "registry": "sandbox-registry"},
    "app": {
        "name": "shop-web",
        "region": "cn-hangzhou",
        "namespace": "cn-hangzhou:demo",
        "cpu": 1000,
        "memory": 2048,
        "replicas": 2,
    },
    "image": {
        "url": "demo-registry.cn-hangzhou.cr.aliyuncs.com/shop/web:1.1",
        "instance_id": "cri-demo",
    },
}


def spec_data(**sections: dict[str, Any]) -> dict[str, Any]:
    """DEMO_SPEC as data with some sections' fields replaced (`image={"url": ...}`); a None
    value removes the field."""
    data = copy.deepcopy(DEMO_SPEC)
    for section, fields in sections.items():
        target = data.setdefault(section, {})
        for key, value in fields.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
    return data


def make_spec(**sections: dict[str, Any]) -> DeploySpec:
    """DEMO_SPEC with some sections' fields replaced, parsed (see `spec_data`)."""
    return parse_spec(spec_data(**sections))
