"""`writroot verify`: thin shell over writroot.verify.core."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from writroot.cli.common import console, json_option, print_json


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--anchor", required=True, metavar="FINGERPRINT|PEMFILE",
              help="The pinned fleet root: its keyid fingerprint or its PEM public key file.")
@click.option("--revocations", multiple=True, metavar="FILE",
              help="Revocation list(s) to apply: every verified list counts (none un-revokes); "
                   "the highest sequence is reported and must be current.")
@click.option("--subject", "subjects", multiple=True, metavar="FILE",
              help="A release file or OSCAL document to check against the in-toto subjects "
                   "that name it (by file name, or by <model>/<uuid>@<version>).")
@click.option("--at", "at_text", metavar="TIME",
              help="Reference time, UTC YYYY-MM-DDTHH:MM:SSZ (default: now).")
@click.option("--independent", is_flag=True,
              help="Re-check every signature with a second, independent implementation.")
@json_option
def verify(paths: tuple[str, ...], anchor: str, revocations: tuple[str, ...],
           subjects: tuple[str, ...], at_text: str | None, independent: bool,
           as_json: bool) -> None:
    """Verify envelopes (files, or directories of *.dsse.json) offline.

    Exits 0 only when every artifact holds; 1 when a check fails; 2 when input is malformed.
    """
    from writroot.crypto.fingerprint import hex_groups
    from writroot.errors import EXIT_OK, EXIT_USAGE, EXIT_VERIFY
    from writroot.jsonio import format_time, parse_time, read_capped
    from writroot.verify.core import verify as verify_core
    from writroot.verify.files import SUBJECT_FILE_BYTES, gather, resolve_anchor

    at = parse_time(at_text, "--at") if at_text else datetime.now(UTC).replace(microsecond=0)
    pinned = resolve_anchor(anchor)
    lists = gather(list(revocations)) if revocations else None
    files = [(s, read_capped(Path(s), SUBJECT_FILE_BYTES)) for s in subjects]
    report = verify_core(gather(list(paths)), pinned, at, independent=independent,
                         revocations=lists, subject_files=files)
    code = EXIT_OK if report.ok else (EXIT_USAGE if report.malformed else EXIT_VERIFY)
    if as_json:
        print_json(report.to_json())
        sys.exit(code)
    out = console()
    out.print(f"reference time  {format_time(at)}")
    out.print(f"anchor          {hex_groups(pinned.keyid)}")
    if report.fleet_root and report.fleet_root != pinned.keyid:
        out.print(f"fleet root now  {hex_groups(report.fleet_root)} (version "
                  f"{report.fleet_version}, by the rotation chain)")
    if report.revocation_sequence is not None:
        out.print(f"revocations     list sequence {report.revocation_sequence} applied")
    for result in report.results:
        mark = "[green]OK  [/green]" if result.ok else "[red]FAIL[/red]"
        engines = f" (checked by {', '.join(sorted(result.checked_by))})" \
            if result.checked_by else ""
        out.print(f"{mark} {result.name}  {result.type or '?'}{engines}")
        for finding in result.findings:
            out.print(f"     - {finding.check}: {finding.message}", markup=False)
    total = len(report.results)
    bad = sum(1 for r in report.results if not r.ok)
    out.print(f"{total - bad} of {total} artifacts verified"
              + ("" if report.ok else f"; {bad} failed"))
    sys.exit(code)
