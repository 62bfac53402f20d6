"""`crossdeploy demo` runs against its own sandbox and shows each fact of the cross-account path."""

from __future__ import annotations

import io

from rich.console import Console

from crossdeploy.demo import run_demo


def test_demo_walks_the_cross_account_path() -> None:
    out = io.StringIO()
    assert run_demo(Console(file=out, width=200, emoji=False)) == 0
    text = out.getvalue()
    assert "A = 1111111111111111, B = 2222222222222222" in text
    assert "vsw-app-h → ngw-app → EIP 47.96.10.20" in text
    assert "shop/web:1.1 on cri-demo (sha256:bbbb)" in text
    assert "acs:ram::2222222222222222:role/sae-pull-shop-web" in text
    assert "refused (NoPermission)" in text
