"""`writroot audit TRANSCRIPT`: check the hash chain and the ceremony record, render a report."""

from __future__ import annotations

import hashlib
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from writroot.cli.common import console, json_option, print_json
from writroot.display import md

#: A transcript is a few hundred lines of digests and facts; 16 MiB is far beyond any ceremony.
MAX_TRANSCRIPT_BYTES = 16 * 1024 * 1024


@click.command()
@click.argument("transcript", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--anchor", required=True, metavar="FINGERPRINT|PEMFILE",
              help="The pinned fleet root: its keyid fingerprint or its PEM public key file.")
@click.option("--record", "record_path", type=click.Path(path_type=Path, dir_okay=False),
              help="The ceremony-record envelope (default: beside the transcript).")
@click.option("--with", "extra", multiple=True, type=click.Path(path_type=Path),
              help="Artifacts that establish the signer (e.g. the fleet-root statement).")
@click.option("--markdown", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the report as Markdown to this new file.")
@click.option("--html", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write a self-contained HTML report to this new file.")
@json_option
def audit(transcript: Path, anchor: str, record_path: Path | None, extra: tuple[Path, ...],
          markdown: Path | None, html: Path | None, as_json: bool) -> None:
    """Verify a transcript's chain and its signed ceremony record; exit 0 only if both hold."""
    from writroot.ceremony.transcript import render_markdown
    from writroot.errors import EXIT_OK, EXIT_VERIFY, BadInput, VerificationFailed
    from writroot.jsonio import read_capped
    from writroot.outputs import Staging
    from writroot.statements import parse_payload
    from writroot.verify.core import verify
    from writroot.verify.files import gather, resolve_anchor
    from writroot.verify.transcript import check_chain

    data = read_capped(transcript, MAX_TRANSCRIPT_BYTES)
    events, head = check_chain(data, str(transcript))
    record = record_path or transcript.with_name("ceremony-record.dsse.json")
    artifacts = gather([str(record), *map(str, extra)])
    pinned = resolve_anchor(anchor)
    report = verify(artifacts, pinned, datetime.now(UTC).replace(microsecond=0))
    from writroot.envelope import Envelope

    statement = parse_payload(Envelope.parse(artifacts[0][1], str(record)).payload, str(record))
    if statement.type != "ceremony-record":
        raise BadInput("not a ceremony-record statement", str(record))
    if statement.subject["transcript_sha256"] != hashlib.sha256(data).hexdigest() or \
            statement.subject["head"] != head or statement.subject["entries"] != len(events):
        raise VerificationFailed("the ceremony record does not seal this transcript",
                                 str(transcript))
    record_result = next(r for r in report.results if r.name == str(record))
    record_ok = record_result.ok
    text = _with_reasons(render_markdown(events, head, record_ok),
                         [f"\\[{md(f.check)}\\] {md(f.message)}"
                          for f in record_result.findings])
    from writroot.verify.html import render_transcript

    page = render_transcript(events, head, record_ok, report) if html else ""
    outputs = [(markdown, text.encode()), (html, page.encode())]
    for target, body in outputs:
        if target is not None:
            with Staging(target.parent.resolve()) as stage:
                stage.write(target.name, body)
    if as_json:
        print_json({"ok": record_ok, "entries": len(events), "head": head,
                    "record": report.to_json()})
    else:
        console().print(text, markup=False)
    sys.exit(EXIT_OK if record_ok else EXIT_VERIFY)


def _with_reasons(text: str, reasons: list[str]) -> str:
    """Put each reason the record did not verify on its own line, under the NOT VERIFIED line."""
    if not reasons:
        return text
    marker = "- ceremony-record signature: NOT VERIFIED\n"
    lines = "".join(f"  - {reason}\n" for reason in reasons)
    return text.replace(marker, marker + lines, 1)
