"""Documented SAE facts shared by the deploy tool's validation and the sandbox cloud."""

from __future__ import annotations

import re

CPU_FOR_MEMORY: dict[int, tuple[int, ...]] = {
    1024: (500, 1000),
    2048: (500, 1000, 2000),
    4096: (1000, 2000, 4000),
    8192: (2000, 4000, 8000),
    12288: (12000,),
    16384: (4000, 8000, 16000),
    24576: (12000,),
    32768: (16000,),
    65536: (8000, 16000, 32000),
    131072: (32000,),
}
"""Memory (MiB) -> allowed Cpu (millicores), reference 2.3."""

MAX_REPLICAS = 50
SAE_REGIONS = (
    "cn-hangzhou", "cn-shanghai", "cn-beijing", "cn-zhangjiakou", "cn-shenzhen", "cn-guangzhou",
    "cn-chengdu", "cn-hongkong", "cn-heyuan", "cn-wulanchabu", "ap-southeast-1",
    "ap-northeast-1", "eu-central-1", "us-west-1", "us-east-1",
)  # fmt: skip
"""Regions with an SAE endpoint (the SDK's endpoint map, reference 1.7)."""
NOT_IN_API_CONTRACT = frozenset({"Labels", "LokiConfigs", "RaspConfig"})
"""CreateApplication/DeployApplication parameters of the SDK's request models that Alibaba's API
metadata (sandbox/api_meta/sae-2019-05-06.json, acs-sdk-php @ 4ca78154) does not list: the
gateway ignores a parameter its contract lacks, so setting one would never take effect (and the
app would drift on every run). tests/sandbox/test_contract.py keeps this set equal to the
difference."""
APP_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{0,35}$")
"""SAE AppName: letters, digits, hyphens; starts with a letter; at most 36; no trailing hyphen."""


def memory_choices_for(cpu: int) -> list[int]:
    return [memory for memory, cpus in CPU_FOR_MEMORY.items() if cpu in cpus]


def valid_app_name(name: str) -> bool:
    return bool(APP_NAME.match(name)) and not name.endswith("-")
