"""The sandbox's undocumented error codes: written in one table, and never relied on by the product.

The real cloud may answer those cases with other codes, so a product that branched on one would
work only against the sandbox. It re-reads the resource instead (tests/steps/test_steps_app.py and
tests/steps/test_steps_registry.py show it converging whatever code the cloud answers).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import chosen_codes

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("crossdeploy", "tasks", "flows", "blocks")
TABLE_FILE = ROOT / "sandbox" / "chosen_codes.py"


def _sources(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("chosen", chosen_codes.TABLE, ids=lambda chosen: chosen.code)
def test_the_product_never_names_a_code_the_sandbox_chose(chosen: chosen_codes.Chosen) -> None:
    named = [str(p.relative_to(ROOT)) for p in _sources(*PRODUCT) if chosen.code in p.read_text()]
    assert named == []


def test_chosen_codes_are_spelled_out_only_in_their_table() -> None:
    """Services raise them through the table (`Chosen.error`), never as their own literals."""
    spelled = {
        str(path.relative_to(ROOT)): codes
        for path in _sources("sandbox")
        if path != TABLE_FILE
        if (codes := [c.code for c in chosen_codes.TABLE if f'"{c.code}"' in path.read_text()])
    }
    assert spelled == {}


def test_every_entry_is_marked_chosen_and_says_why() -> None:
    codes = [chosen.code for chosen in chosen_codes.TABLE]
    assert len(codes) == len(set(codes))
    for chosen in chosen_codes.TABLE:
        assert chosen.why.startswith("Chosen, not documented: "), chosen.code
        assert len(chosen.why) > len("Chosen, not documented: ") + 40, chosen.code
