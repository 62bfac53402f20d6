"""The world file's RAM users: every attached policy must exist, and key ids are unique."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from sandbox.world import World
from tests.support.worlds import demo_world_data as demo_data


def with_users(*users: dict[str, Any], policies: list[dict[str, str]] | None = None) -> Any:
    data = copy.deepcopy(demo_data())
    data["ram"]["app"] = {"policies": policies or [], "users": list(users)}
    return data


def user(name: str, key_id: str, *policies: str) -> dict[str, Any]:
    return {
        "name": name,
        "access_keys": [{"id": key_id, "secret": "s"}],
        "policies": list(policies),
    }


CUSTOM = [
    {
        "name": "Mine",
        "document": json.dumps(
            {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "vpc:*", "Resource": "*"}]}
        ),
    }
]


def test_users_with_custom_and_system_policies_load() -> None:
    world = World.model_validate(
        with_users(user("ops", "LTAIops", "mine", "AliyunVPCReadOnlyAccess"), policies=CUSTOM)
    )
    assert world.ram["app"].users[0].policies == ["mine", "AliyunVPCReadOnlyAccess"]


def test_a_user_naming_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValidationError, match="user ops attaches unknown policy 'NoSuchPolicy'"):
        World.model_validate(with_users(user("ops", "LTAIops", "NoSuchPolicy")))


def test_another_accounts_custom_policy_is_unknown() -> None:
    data = with_users(user("ops", "LTAIops", "Theirs"))
    data["ram"]["registry"]["policies"] = [{**CUSTOM[0], "name": "Theirs"}]
    with pytest.raises(ValidationError, match="unknown policy 'Theirs'"):
        World.model_validate(data)


@pytest.mark.parametrize(
    "key_id",
    ["LTAIsandboxApp0001", "LTAIsandboxReg0001", "LTAIdup"],
    ids=["root-a", "root-b", "user"],
)
def test_key_ids_are_unique_across_accounts_and_users(key_id: str) -> None:
    data = with_users(user("one", "LTAIdup"), user("two", key_id))
    with pytest.raises(ValidationError, match="duplicate key id"):
        World.model_validate(data)


def test_user_names_are_unique_in_an_account() -> None:
    with pytest.raises(ValidationError, match="duplicate user name"):
        World.model_validate(with_users(user("ops", "LTAIa"), user("OPS", "LTAIb")))
