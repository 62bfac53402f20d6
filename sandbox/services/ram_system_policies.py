"""The RAM system policies the sandbox knows, by name (PolicyType `System`)."""

from __future__ import annotations

import json


def _allow(*actions: str) -> str:
    statement = {"Effect": "Allow", "Action": list(actions), "Resource": "*"}
    return json.dumps({"Version": "1", "Statement": [statement]})


SYSTEM_POLICIES: dict[str, tuple[str, str]] = {
    "AdministratorAccess": ("Full access to all Alibaba Cloud resources.", _allow("*")),
    "AliyunRAMFullAccess": ("Full access to RAM.", _allow("ram:*")),
    "AliyunRAMReadOnlyAccess": ("Read-only access to RAM.", _allow("ram:Get*", "ram:List*")),
    "AliyunSTSAssumeRoleAccess": ("Call STS AssumeRole.", _allow("sts:AssumeRole")),
    "AliyunVPCFullAccess": ("Full access to VPC.", _allow("vpc:*")),
    "AliyunVPCReadOnlyAccess": (
        "Read-only access to VPC.",
        _allow("vpc:Describe*", "vpc:List*", "vpc:Get*"),
    ),
    "AliyunContainerRegistryFullAccess": ("Full access to Container Registry.", _allow("cr:*")),
    "AliyunContainerRegistryReadOnlyAccess": (
        "Read-only access to Container Registry.",
        _allow("cr:Get*", "cr:List*", "cr:PullRepository"),
    ),
    "AliyunSAEFullAccess": ("Full access to Serverless App Engine.", _allow("sae:*")),
    "AliyunSAEReadOnlyAccess": (
        "Read-only access to Serverless App Engine.",
        _allow("sae:Get*", "sae:List*", "sae:Query*", "sae:Describe*"),
    ),
}
