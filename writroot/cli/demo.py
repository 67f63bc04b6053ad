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
    """Genesis of a fleet root and a regional root on throwaway SoftHSM2 tokens, then verify."""
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
    for art in summary["artifacts"]:
        out.print(f"  signed       {art['path']}  ({art['type']}, signed by {art['engine']}, "
                  f"checked by {art['checked_by']})")
    out.print(f"verified: {summary['verified']} (independent: {summary['verified_independent']})")
    out.print(f"tokens: export SOFTHSM2_CONF={result.workdir / 'hsm' / 'softhsm2.conf'}; "
              "writroot hsm info --token-label writroot-fleet")
    artifacts = result.workdir / "genesis" / "artifacts"
    out.print(f"try:  writroot verify {artifacts} --anchor {result.anchor_pem} --independent")
