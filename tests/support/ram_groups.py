"""A world with RAM user groups: the demo world plus, in account A, groups whose policies count for
their members (tests/sandbox/test_ram_groups.py, and the response-model check of the user and
group reads), and in account B a user allowed to read a repository's tags."""

from __future__ import annotations

import json
from typing import Any

from tests.support.clients import UIDS
from tests.support.worlds import FAST_TIMING, demo_world_data

APP, REGISTRY = UIDS["app"], UIDS["registry"]
READER = ("LTAIgroupReader001", "reader-secret")
LONER = ("LTAIgroupLoner0001", "loner-secret")
TAGGER = ("LTAIgroupTagger001", "tagger-secret")
OLD_TAGGER = ("LTAIgroupOldTag001", "old-tagger-secret")


def _policy(action: str | list[str], resource: str | list[str] = "*") -> str:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    return json.dumps({"Version": "1", "Statement": [statement]})


def _user(name: str, key: tuple[str, str], policies: list[str], groups: list[str]) -> Any:
    access_keys = [{"id": key[0], "secret": key[1]}]
    return {"name": name, "access_keys": access_keys, "policies": policies, "groups": groups}


def groups_world() -> dict[str, Any]:
    """`reader` may read its own RAM policies and groups only through its group `ram-readers`, and
    list VPCs only through `vpc-viewers`; `loner` has the same own policy and no group."""
    data = demo_world_data(**FAST_TIMING)
    repository = f"acs:cr:*:{REGISTRY}:repository/cri-demo/shop/web"
    data["ram"] = {
        "app": {
            "policies": [
                {
                    "name": "ReadOwnRam",
                    "description": "read one's own RAM policies and groups",
                    "document": _policy(
                        [
                            "ram:ListPoliciesForUser",
                            "ram:ListGroupsForUser",
                            "ram:ListPoliciesForGroup",
                        ],
                        [f"acs:ram:*:{APP}:user/reader", f"acs:ram:*:{APP}:group/*"],
                    ),
                },
                {"name": "ListVpcs", "document": _policy("vpc:DescribeVpcs")},
            ],
            "groups": [
                {"name": "ram-readers", "comments": "read RAM", "policies": ["ReadOwnRam"]},
                {"name": "vpc-viewers", "policies": ["ListVpcs", "AliyunSTSAssumeRoleAccess"]},
            ],
            "users": [
                _user(
                    "reader", READER, ["AliyunSTSAssumeRoleAccess"], ["ram-readers", "VPC-Viewers"]
                ),
                _user("loner", LONER, ["AliyunSTSAssumeRoleAccess"], []),
            ],
        },
        "registry": {
            "policies": [
                {"name": "ReadTags", "document": _policy("cr:ListRepositoryTag", repository)},
                {"name": "OldTagName", "document": _policy("cr:GetRepositoryTag", repository)},
            ],
            "users": [
                _user("tagger", TAGGER, ["ReadTags"], []),
                _user("old-tagger", OLD_TAGGER, ["OldTagName"], []),
            ],
        },
    }
    return data
