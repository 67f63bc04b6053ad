"""`writroot demo`."""

from __future__ import annotations

from pathlib import Path

import click

from writroot.cli.common import console, json_option, print_json


@click.command()
@click.option("--workdir", type=click.Path(path_type=Path, file_okay=False),
              help="Empty or new directory for the demo's outputs (default: a fresh temp dir).")
@json_option
def demo(workdir: Path | None, as_json: bool) -> None:
    """The whole ceremony story on throwaway SoftHSM2 tokens, then verify, audit, calendar."""
    from writroot.crypto.fingerprint import hex_groups, pgp_words
    from writroot.demo import run_demo

    out = console()
    if as_json:
        result = run_demo(workdir)
        print_json(result.to_json())
        return
    with out.status("starting") as status:
        def progress(message: str) -> None:
            status.update(message)
            out.print(f"- {message}")

        result = run_demo(workdir, progress=progress)
    summary = result.to_json()
    out.print()
    out.print(f"[bold]fleet root[/bold] {summary['anchor_algorithm']}, "
              f"{summary['custody']} custody")
    out.print(f"  fingerprint  {hex_groups(result.anchor.keyid)}")
    out.print(f"  PGP words    {pgp_words(bytes.fromhex(result.anchor.keyid))}")
    out.print(f"  anchor PEM   {result.anchor_pem}")
    out.print(f"  now          {hex_groups(result.current_root)} (rotated, version 2)")
    out.print(f"ceremonies     {', '.join(summary['ceremonies'])}")
    audited = all(summary["audits"].values())
    out.print(f"audits         {len(summary['audits'])} transcripts, "
              f"{'all sealed by verified records' if audited else 'FAILED'}")
    out.print(f"published      {len(summary['artifacts'])} artifacts in {summary['published']}")
    for path, message in summary["revoked_rejected"].items():
        out.print(f"revoked        {Path(path).name}: rejected ({message})", markup=False)
    rec = summary["recovery"]
    if rec:
        out.print(f"recovery       split {rec['split']} ({rec['threshold']} of {rec['shares']}); "
                  f"{', '.join(rec['holders'])} rehearsed a restore of "
                  f"{hex_groups(rec['restored_keyid'])}: record {rec['record']}")
    if summary.get("audit_package"):
        out.print(f"audit package  {summary['audit_package']}", markup=False)
        out.print(f"audit report   {summary['audit_report']}", markup=False)
    log = summary["log"]
    if log:
        out.print(f"log            {log['origin']}: {log['size']} entries, "
                  f"{log['cosigned']} checkpoints cosigned ({log['quorum']} of "
                  f"{len(log['witnesses'])} witnesses); a split view refused "
                  f"({log['evidence']})", markup=False)
        for row in log.get("logs", []):
            if row["origin"] == log["origin"]:
                continue
            state = ("no checkpoint yet" if row["size"] is None else
                     f"{row['size']} entries, {row['checkpoints']} checkpoints cosigned")
            out.print(f"               {row['origin']}: {state}", markup=False)
    out.print(f"verified: {summary['verified']} (independent: {summary['verified_independent']})")
    pub, pem = summary["published"], result.anchor_pem
    out.print("try:")
    out.print(f"  writroot verify {pub} --anchor {pem} --independent")
    out.print(f"  writroot status {pub} --anchor {pem}")
    out.print(f"  writroot audit {result.workdir / 'out' / 'demo-genesis' / 'transcript.jsonl'} "
              f"--anchor {pem} --record {pub}/records/demo-genesis.ceremony-record.dsse.json "
              f"--with {pub}/artifacts")
    out.print(f"  export SOFTHSM2_CONF={result.workdir / 'hsm' / 'softhsm2.conf'}; "
              "writroot hsm info --token-label writroot-fleet")
