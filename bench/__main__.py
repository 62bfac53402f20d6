"""`python -m bench [--quick] [--only NAME,...] [--out PATH]`: run the scenarios, print the
table (scenario | figure | ours | baseline), and write docs/BENCHMARKS.md.

One Prefect test server (temporary SQLite) is started for the whole run; flows run in this
process. `BENCH_QUICK=1` is the same as --quick.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from bench import critical_path, economy, fleet, fleet_workers, overhead, polling, sandbox_rps
from bench.common import Figure
from bench.report import text_table, write

SCENARIOS: dict[str, Callable[[bool], list[Figure]]] = {
    "critical-path": critical_path.run,
    "polling": polling.run,
    "economy": economy.run,
    "overhead": overhead.run,
    "sandbox": sandbox_rps.run,
    "fleet": fleet.run,
    "fleet-workers": fleet_workers.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    parser.add_argument("--only", default="", help="comma-separated: " + ", ".join(SCENARIOS))
    parser.add_argument("--out", type=Path, default=Path("docs/BENCHMARKS.md"))
    args = parser.parse_args(argv)
    chosen = [s for s in args.only.split(",") if s] or list(SCENARIOS)
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    # expected: throttling retries, and the failed deploy the economy scenario makes on purpose
    logging.getLogger("crossdeploy.cloud").setLevel(logging.ERROR)
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).setLevel(logging.CRITICAL)

    from prefect.testing.utilities import prefect_test_harness

    import flows.cross_account_deploy  # noqa: F401  (imported once, not raced by threads)

    started = time.monotonic()
    figures: list[Figure] = []
    with prefect_test_harness(server_startup_timeout=120):
        for name in chosen:
            began = time.monotonic()
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            found = SCENARIOS[name](args.quick)
            print(text_table(found), file=sys.stderr, flush=True)
            figures += found
            print(f"[bench] {name} done in {time.monotonic() - began:.0f} s", file=sys.stderr)
    elapsed = time.monotonic() - started
    print(text_table(figures))
    command = "make bench" + (" BENCH_QUICK=1" if args.quick else "")
    if args.only:
        command = "python -m bench" + (" --quick" if args.quick else "") + f" --only {args.only}"
    write(figures, args.out, command, elapsed)
    print(f"\nwritten to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
