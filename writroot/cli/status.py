"""`writroot status`: the rotation calendar of a verified artifact set."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from writroot.cli.common import console, json_option, print_json

_STYLE = {"ok": "green", "due": "yellow", "overdue": "bold red", "expired": "bold red",
          "revoked": "bold red", "revoked-expired": "dim", "superseded": "dim"}


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--anchor", required=True, metavar="FINGERPRINT|PEMFILE",
              help="The pinned fleet root: its keyid fingerprint or its PEM public key file.")
@click.option("--revocations", multiple=True, metavar="FILE",
              help="Revocation list(s) to apply: every verified list counts (none un-revokes).")
@click.option("--at", "at_text", metavar="TIME",
              help="Reference time, UTC YYYY-MM-DDTHH:MM:SSZ (default: now).")
@click.option("--warn-days", default=14, show_default=True, type=click.IntRange(0, 365),
              help="Call a rotation due this many days ahead.")
@json_option
def status(paths: tuple[str, ...], anchor: str, revocations: tuple[str, ...],
           at_text: str | None, warn_days: int, as_json: bool) -> None:
    """Every key's age, expiry and next rotation date, from artifacts that verify.

    Exits 1 when anything in force is overdue, expired or revoked, so CI can gate on it.
    """
    from writroot.crypto.fingerprint import hex_groups
    from writroot.jsonio import format_time, parse_time
    from writroot.status import LOUD, authentic_at, calendar, revoked_at, with_revocations
    from writroot.verify.core import parse_artifact
    from writroot.verify.files import gather, resolve_anchor
    from writroot.verify.logs import log_status, split_inputs
    from writroot.verify.trust import establish

    at = parse_time(at_text, "--at") if at_text else datetime.now(UTC).replace(microsecond=0)
    envelope_paths, log_files = split_inputs(list(paths))
    pinned = resolve_anchor(anchor)
    given = (gather(envelope_paths) if envelope_paths else []) + \
        (gather(list(revocations)) if revocations else [])
    parsed = [parse_artifact(name, data) for name, data in given]
    trust = establish(pinned, parsed, at)  # the revocations: only from lists it verified
    report = trust.report
    revoked = revoked_at(report)
    newest = authentic_at(report)
    if newest is not None and newest < at:
        report = establish(pinned, parsed, newest).report
    statements = [p.statement for p in parsed if p.statement is not None]
    rows = with_revocations(calendar(report, warn_days, at, revoked), trust.revocations,
                            statements, at)
    fleet = next((r.statement.fleet for r in report.results if r.ok and r.statement), None)
    logs = log_status(report, fleet, log_files)
    loud = [r for r in rows if r.state in LOUD]
    failed = [r.name for r in report.results if not r.ok]
    if as_json:
        print_json({"at": format_time(at), "fleet_root": report.fleet_root,
                    "rows": [r.to_json() for r in rows], "loud": len(loud),
                    "not_verified": failed, "logs": [log.to_json() for log in logs]})
        sys.exit(1 if loud else 0)
    from rich.table import Table
    from rich.text import Text

    from writroot.display import inert

    out = console()
    if not out.is_terminal:
        out.width = 160  # logs and pipes: never wrap a row
    out.print(f"rotation calendar at {format_time(at)}")
    table = Table()
    for column in ("kind", "name", "version", "keyid", "age", "expires", "rotation due",
                   "state"):
        table.add_column(column, no_wrap=True)
    for r in rows:
        style = _STYLE.get(r.state, "")
        state = r.state.upper() if r.state in LOUD else r.state
        table.add_row(Text(inert(r.kind)), Text(inert(r.name)), Text(inert(r.version)),
                      hex_groups(r.keyid)[:19] if r.keyid
                      else (inert(r.serial) if r.revocation else ""),
                      f"{r.age_days} d", format_time(r.expires)[:10] if r.expires else "?",
                      format_time(r.due)[:10] if r.due else "-", Text(state, style=style))
    out.print(table)
    for r in rows:
        if r.revocation is not None:
            rev = r.revocation
            out.print(Text(inert(f"{r.kind} {r.name} {r.version}".strip() + ": "
                                 f"{rev.target} revoked {format_time(rev.revoked_at)} "
                                 f"({rev.reason}) by revocation list {rev.sequence}"
                                 + ("" if r.expires else "; its artifact is not in this set")),
                           style="" if r.state == "revoked-expired" else "bold red"))
    if logs:
        logs_table = Table()
        for column in ("log", "size", "newest checkpoint root", "cosigned", "last cosigned"):
            logs_table.add_column(column, no_wrap=True)
        for log in logs:
            logs_table.add_row(Text(inert(log.origin)),
                               "-" if log.size is None else str(log.size),
                               log.root or "no checkpoint given",
                               f"{len(log.witnesses)} (quorum {log.quorum})",
                               log.last_cosigned or "-")
        out.print(logs_table)
        for log in logs:  # witness names below the table: they would squeeze it
            if log.witnesses:
                out.print(Text(inert(f"{log.origin} cosigned by: {', '.join(log.witnesses)}")))
    if failed:
        out.print(Text(f"{len(failed)} artifact(s) did not verify and are not in the "
                       "calendar (run writroot verify): ", style="yellow")
                  + Text(", ".join(inert(name) for name in failed)))
    if loud:
        out.print(Text(f"{len(loud)} key(s) OVERDUE, EXPIRED or REVOKED: "
                       + ", ".join(inert(f"{r.kind} {r.name} {r.version}".strip())
                                   for r in loud),
                       style="bold red"))
    sys.exit(1 if loud else 0)
