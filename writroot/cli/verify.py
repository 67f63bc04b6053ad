"""`writroot verify`: thin shell over writroot.verify.core (and the audit-package checks)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from writroot.cli.common import console, json_option, print_json
from writroot.display import inert

if TYPE_CHECKING:
    from writroot.verify.core import Anchor, Report
    from writroot.verify.report import ArtifactResult


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--anchor", required=True, metavar="FINGERPRINT|PEMFILE",
              help="The pinned fleet root: its keyid fingerprint (64 hex digits, in groups or not, "
              "or its 32 PGP words) or its PEM public key file.")
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
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write a self-contained HTML report (the trust tree, every finding).")
@click.option("--explain", "explain", nargs=2, metavar="ARTIFACT OUTDIR",
              type=(click.Path(path_type=Path, dir_okay=False), click.Path(path_type=Path)),
              help="Write ARTIFACT's PAE, signatures, signers' PEMs and an OpenSSL 3.5 script "
                   "that verifies them to the new directory OUTDIR.")
@click.option("--jobs", type=click.IntRange(0, 256), default=0, show_default=True,
              help="Processes that check signatures (0: one per core; 1: all in this one).")
@json_option
def verify(paths: tuple[str, ...], anchor: str, revocations: tuple[str, ...],
           subjects: tuple[str, ...], at_text: str | None, independent: bool,
           html_path: Path | None, explain: tuple[Path, Path] | None, jobs: int,
           as_json: bool) -> None:
    """Verify envelopes (files, directories of *.dsse.json, or audit packages) offline.

    An audit package (a .tar file, or a directory with MANIFEST.json) is checked whole:
    artifacts, transcripts and records, approvals, enrolments, key requests, OSCAL sources
    and transfer bundles. Exits 0 only when everything holds; 1 when a check fails; 2 when
    input is malformed.
    """
    from writroot.errors import EXIT_OK, EXIT_USAGE, EXIT_VERIFY
    from writroot.jsonio import parse_time

    at = parse_time(at_text, "--at") if at_text else datetime.now(UTC).replace(microsecond=0)
    from writroot.verify.files import resolve_anchor

    pinned = resolve_anchor(anchor)
    report = _run(list(paths), pinned, at, independent, revocations, subjects, jobs)
    explained = _explain(explain, report, pinned) if explain is not None else None
    if html_path is not None:
        from writroot.outputs import publish_file
        from writroot.verify.html import render

        publish_file(html_path, render(report).encode(), "--html")
    code = EXIT_OK if report.ok else (EXIT_USAGE if report.malformed else EXIT_VERIFY)
    if as_json:
        out = report.to_json()
        _json_notes(out, report)
        if explained is not None:
            out["explain"] = {"dir": str(explain[1]) if explain else "", "files": explained}
        if html_path is not None:
            out["html"] = str(html_path)
        print_json(out)
        sys.exit(code)
    _print(report, pinned.keyid, html_path)
    if explain is not None and explained is not None:
        console().print(f"explained       {inert(explain[0])} in {inert(explain[1])}: "
                        + ", ".join(explained), markup=False)
    sys.exit(code)


def _run(paths: list[str], pinned: Anchor, at: datetime, independent: bool,
         revocations: tuple[str, ...], subjects: tuple[str, ...], jobs: int = 1) -> Report:
    from writroot.errors import BadInput
    from writroot.jsonio import read_capped
    from writroot.verify import package
    from writroot.verify.core import verify as verify_core
    from writroot.verify.files import SUBJECT_FILE_BYTES, gather

    packages = [p for p in paths if package.is_package(Path(p))]
    others = [p for p in paths if p not in packages]
    if len(packages) > 1:
        raise BadInput("verify one audit package at a time", packages[1])
    lists = gather(list(revocations)) if revocations else None
    files = [(s, read_capped(Path(s), SUBJECT_FILE_BYTES)) for s in subjects]
    if packages:
        if lists or files:
            raise BadInput("an audit package carries its own revocation lists and subjects",
                           "--revocations/--subject")
        pkg = package.load(Path(packages[0]))
        return package.check(pkg, pinned, at, independent, gather(others) if others else [])
    from writroot.verify.bulk import BULK_MIN, default_jobs
    from writroot.verify.core import verify_parsed
    from writroot.verify.files import gather_paths, parsed
    from writroot.verify.logs import judge, split_inputs

    others, log_files = split_inputs(others)
    jobs = jobs or default_jobs()
    if others and jobs > 1 and not independent and len(gather_paths(others)) >= BULK_MIN:
        artifacts, signatures = parsed(others, jobs, pinned)
        report = verify_parsed(artifacts, pinned, at, revocations=lists, subject_files=files,
                               signatures=signatures, jobs=jobs)
    else:
        report = verify_core(gather(others) if others else [], pinned, at,
                             independent=independent, revocations=lists, subject_files=files)
    fleet = next((r.statement.fleet for r in report.results if r.ok and r.statement), None)
    judge(report, fleet, log_files, _payload_of)
    return report


def _payload_of(name: str) -> bytes | None:
    """An artifact's DSSE payload, read again by the name verify reported it under."""
    from writroot.envelope import Envelope
    from writroot.errors import WritrootError
    from writroot.jsonio import read_capped
    from writroot.verify.files import MAX_ARTIFACT_BYTES

    try:
        return Envelope.parse(read_capped(Path(name), MAX_ARTIFACT_BYTES), name).payload
    except (WritrootError, OSError):
        return None


def _explain(explain: tuple[Path, Path], report: Report, pinned: Anchor) -> list[str]:
    from writroot.jsonio import read_capped
    from writroot.verify.explain import explain as write_explanation
    from writroot.verify.files import MAX_ARTIFACT_BYTES

    artifact, outdir = explain
    data = read_capped(artifact, MAX_ARTIFACT_BYTES)
    return write_explanation(artifact, data, report, pinned, outdir)


def _anchor_mismatch(report: Report) -> str | None:
    """One line before every per-artifact finding when the pinned anchor is not this fleet's:
    no fleet root was established from it and a fleet-root statement names another key."""
    from writroot.crypto.fingerprint import hex_groups

    if report.fleet_root is not None:
        return None
    if not any(f.check == "anchor-pinned" for r in report.results for f in r.findings):
        return None
    return (f"WRONG ANCHOR: {hex_groups(report.anchor)[:39]} … is not this fleet's root "
            "(its fleet-root statement names another key), so nothing below is trusted; "
            "check --anchor against the fingerprint recorded at genesis")


def _print(report: Report, anchor: str, html_path: Path | None) -> None:
    from writroot.crypto.fingerprint import hex_groups
    from writroot.jsonio import format_time

    out = console()

    def line(text: str) -> None:  # every value from an input goes through inert()
        out.print(text, markup=False)

    lead = _anchor_mismatch(report)
    if lead is not None:
        line(lead)
    line(f"reference time  {format_time(report.at)}")
    line(f"anchor          {hex_groups(anchor)}")
    if report.package is not None:
        line(f"audit package   {inert(report.package['path'])}")
        line(f"  manifest      {inert(report.package['manifest_sha256'])}")
        line(f"  read aloud    {inert(report.package['words'])}")
    if report.fleet_root and report.fleet_root != anchor:
        line(f"fleet root now  {hex_groups(report.fleet_root)} (version "
             f"{report.fleet_version}, by the rotation chain)")
    if report.revocation_sequence is not None:
        line(f"revocations     list sequence {report.revocation_sequence} applied")
    for result in report.results:
        mark = "[green]OK  [/green]" if result.ok else "[red]FAIL[/red]"
        engines = f" (checked by {', '.join(sorted(result.checked_by))})" \
            if result.checked_by else ""
        from rich.text import Text

        out.print(Text.from_markup(mark) + Text(
            f" {inert(result.name)}  {inert(result.type or '?')}{engines}"
            f"{_binder_note(result, report)}"))
        for finding in result.findings:
            line(f"     - {inert(finding.check)}: {inert(finding.message)}")
    total = len(report.results)
    bad = sum(1 for r in report.results if not r.ok)
    line(f"{total - bad} of {total} artifacts verified" + ("" if report.ok else f"; {bad} failed"))
    if html_path is not None:
        line(f"report          {inert(html_path)}")


def _binder_note(result: ArtifactResult, report: Report) -> str:
    """What an approval, enrolment or key request verified alone is, and whether it is
    current: information only (the exit code does not change)."""
    from writroot.verify.binder_notes import describe

    note = describe(result, report.at, report)
    return f"\n     ({inert(note)})" if note else ""


def _json_notes(out: dict[str, object], report: Report) -> None:
    from writroot.verify.binder_notes import describe

    artifacts = out.get("artifacts")
    if isinstance(artifacts, list):
        for entry, result in zip(artifacts, report.results, strict=True):
            note = describe(result, report.at, report)
            if note:
                entry["note"] = note
