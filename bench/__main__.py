"""`python -m bench [--json]`: run every section, print a table (or JSON rows).

Exits 1 when a row with a target fails it, so `make bench` can gate on it.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench import Row, custody, engines, log, native, scale, startup, throughput
from bench.hsmtoken import throwaway_custody
from writroot.crypto.algorithms import SLH_DSA_SHA2_256S

WIDTH = 150
STATUS_STYLE = {"PASS": "green", "FAIL": "bold red", "SKIP": "yellow"}


def hsm_and_verify() -> list[Row]:
    """Sections 2, 3 and scale share one throwaway token and one fleet key."""
    with throwaway_custody() as cust:
        fleet = cust.generate(SLH_DSA_SHA2_256S, role="fleet-root", label="bench-fleet-root")
        return custody.run(cust, fleet) + throughput.run(cust, fleet) + scale.run(cust, fleet)


SECTIONS: list[tuple[str, Callable[[], list[Row]]]] = [
    ("engines", engines.run),
    ("hsm + verify", hsm_and_verify),
    ("native custody", native.run),
    ("log", log.run),
    ("startup", startup.run),
]


def _value(row: Row) -> str:
    return "-" if row.value is None else f"{row.value:.4g} {row.unit}"


def table(rows: list[Row], elapsed: float) -> Table:
    out = Table(title="writroot bench", caption=f"measured in {elapsed:.0f} s")
    out.add_column("section", style="dim")
    out.add_column("measurement")
    out.add_column("value", justify="right")
    out.add_column("target", justify="right")
    out.add_column("result")
    out.add_column("note", style="dim")
    for row in rows:
        status = row.status
        out.add_row(row.section, escape(row.what), _value(row), row.target_text,
                    f"[{STATUS_STYLE[status]}]{status}[/]" if status else "", escape(row.note))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--section", action="append", choices=[n for n, _ in SECTIONS],
                        help="run only this section (repeatable; default: all)")
    args = parser.parse_args(argv)
    err = Console(stderr=True)
    rows: list[Row] = []
    start = time.perf_counter()
    for name, section in SECTIONS:
        if args.section and name not in args.section:
            continue
        began = time.perf_counter()
        with err.status(f"bench: {name}"):
            rows += section()
        err.print(f"[dim]bench: {name} took {time.perf_counter() - began:.1f} s[/]")
    elapsed = time.perf_counter() - start
    if args.json:
        print(json.dumps([row.to_json() for row in rows], indent=2))
    else:
        out = Console()
        if not out.is_terminal:  # piped: do not squeeze the table into 80 columns
            out = Console(width=WIDTH)
        out.print(table(rows, elapsed))
    return 1 if any(row.status == "FAIL" for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
