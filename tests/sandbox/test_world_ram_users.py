"""The world file's RAM users and user groups: every attached policy and every group a user is in
must exist, names are unique, and key ids are unique."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
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


# -- user groups -----------------------------------------------------------------------------------


def with_groups(*groups: dict[str, Any], users: list[dict[str, Any]] | None = None) -> Any:
    data = with_users(*(users or []), policies=CUSTOM)
    data["ram"]["app"]["groups"] = list(groups)
    return data


def member(name: str, key_id: str, *groups: str) -> dict[str, Any]:
    return {**user(name, key_id), "groups": list(groups)}


def test_groups_with_policies_and_members_load() -> None:
    world = World.model_validate(
        with_groups(
            {
                "name": "ops-team",
                "comments": "ops",
                "policies": ["Mine", "AliyunVPCReadOnlyAccess"],
            },
            users=[member("ops", "LTAIops", "OPS-team")],
        )
    )
    assert world.ram["app"].groups[0].policies == ["Mine", "AliyunVPCReadOnlyAccess"]
    assert world.ram["app"].users[0].groups == ["OPS-team"]


def test_a_user_in_an_unknown_group_is_refused() -> None:
    data = with_groups({"name": "ops-team"}, users=[member("ops", "LTAIops", "devs")])
    with pytest.raises(ValidationError, match="user ops is in unknown group 'devs'"):
        World.model_validate(data)


def test_a_group_naming_an_unknown_policy_is_refused() -> None:
    data = with_groups({"name": "ops-team", "policies": ["NoSuchPolicy"]})
    with pytest.raises(
        ValidationError, match="group ops-team attaches unknown policy 'NoSuchPolicy'"
    ):
        World.model_validate(data)


def test_group_names_are_unique_in_an_account() -> None:
    with pytest.raises(ValidationError, match="duplicate group name"):
        World.model_validate(with_groups({"name": "ops"}, {"name": "OPS"}))


def test_a_user_names_a_group_once() -> None:
    data = with_groups(
        {"name": "ops-team"}, users=[member("ops", "LTAIops", "ops-team", "OPS-TEAM")]
    )
    with pytest.raises(ValidationError, match="user ops names a group twice"):
        World.model_validate(data)


@pytest.mark.parametrize("name", ["ops_team", "ops team", "", "x" * 65])
def test_a_group_name_follows_rams_format(name: str) -> None:
    with pytest.raises(ValidationError, match="name"):
        World.model_validate(with_groups({"name": name}))


def test_another_accounts_group_is_unknown() -> None:
    data = with_groups(users=[member("ops", "LTAIops", "theirs")])
    data["ram"]["registry"]["groups"] = [{"name": "theirs"}]
    with pytest.raises(ValidationError, match="unknown group 'theirs'"):
        World.model_validate(data)


def test_the_readme_world_fragment_loads() -> None:
    """README.md's RAM users and groups fragment (World files) is a valid world's `ram`."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    found = re.search(r"^```yaml\n(ram:\n.*?)^```$", readme, re.M | re.S)
    assert found is not None
    data = demo_data()
    data["ram"] = yaml.safe_load(found[1])["ram"]
    world = World.model_validate(data)
    assert world.ram["app"].users[0].groups == ["deployers"]
