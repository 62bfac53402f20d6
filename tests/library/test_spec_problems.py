"""An invalid spec names every problem by its field path, and a misspelt field the one it meant
(no sandbox, no Prefect: validation happens before anything runs)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from crossdeploy.fleet_spec import parse_fleet
from crossdeploy.spec import SpecError, parse_spec
from tests.support.specs import DEMO_SPEC


def problems_of(parse: Any, data: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse(data)
    return caught.value.problems


def test_a_misspelt_field_names_the_field_it_meant_at_every_depth() -> None:
    spec = copy.deepcopy(DEMO_SPEC)
    spec["rolout"] = {}
    spec["app"]["replica"] = 2
    spec["image"]["urll"] = spec["image"].pop("url")
    assert sorted(problems_of(parse_spec, spec)) == [
        "app.replica: unknown field (did you mean replicas?)",
        "image.url: Field required",
        "image.urll: unknown field (did you mean url?)",
        "rolout: unknown field (did you mean rollout?)",
    ]


def test_a_field_like_no_other_is_only_unknown() -> None:
    spec = copy.deepcopy(DEMO_SPEC)
    spec["app"]["zzzz"] = 1
    assert problems_of(parse_spec, spec) == ["app.zzzz: unknown field"]


def test_a_fleet_names_what_its_defaults_and_apps_meant() -> None:
    fleet = {
        "name": "shop",
        "accounts": DEMO_SPEC["accounts"],
        "image": DEMO_SPEC["image"],
        "defaults": {"region": "cn-hangzhou", "cpu": 500, "memroy": 1024},
        "apps": [{"name": "shop-web", "namespace": "cn-hangzhou:demo", "replica": 2}],
    }
    assert problems_of(parse_fleet, fleet) == [
        "defaults.memroy: unknown field (did you mean memory?)",
        "apps[0].replica: unknown field (did you mean replicas?)",
    ]
    fleet["acess"] = {}
    assert problems_of(parse_fleet, fleet) == ["acess: unknown field (did you mean access?)"]
