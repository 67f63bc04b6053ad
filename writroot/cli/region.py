"""`writroot region keygen`: the region's side of regional-root issuance and rotation."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import click

from writroot.cli.common import console, json_option, print_json, token_options


@click.group()
def region() -> None:
    """The region's side: generate a regional root and export its key request."""


@region.command()
@token_options
@click.option("--region", "region_code", required=True, help="Region code, e.g. CONUS-NSS.")
@click.option("--fleet", required=True, help="Fleet id the request is for.")
@click.option("--label", required=True, help="Label of the new key on the token.")
@click.option("--algorithm", default="SLH-DSA-SHA2-256s", show_default=True,
              help="SLH-DSA-SHA2-256s, or ML-DSA-87 where the fleet policy allows it.")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path),
              help="Key-request transfer bundle to write: a new directory or a .tar file.")
@click.option("--backup-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Also write the sealed key (it opens only on this token) here.")
@json_option
def keygen(module: str | None, token_label: str | None, token_serial: str | None,
           pin_source: str, region_code: str, fleet: str, label: str, algorithm: str,
           out_path: Path, backup_dir: Path | None, as_json: bool) -> None:
    """Generate the regional root in this region's HSM; export a key request whose
    self-signature proves possession, as a transfer bundle for the fleet ceremony."""
    from writroot.crypto.algorithms import by_name
    from writroot.crypto.fingerprint import hex_groups, pgp_words
    from writroot.errors import BadInput
    from writroot.hsm.custody import Custody
    from writroot.hsm.token import TokenSpec, default_module, open_session, token_facts
    from writroot.region import make_request
    from writroot.statements import region_check
    from writroot.statements.schema import name
    from writroot.transfer import export_bundle

    region_check(region_code, "--region")
    name(fleet, "--fleet")
    alg = by_name(algorithm, "--algorithm")
    if out_path.exists():
        raise BadInput("exists already (outputs are write-once)", str(out_path))
    spec = TokenSpec(module or default_module(), token_label, token_serial, pin_source)
    now = datetime.now(UTC).replace(microsecond=0)
    with open_session(spec, rw=True) as session:
        token = token_facts(session.token)
        request = make_request(Custody(session, spec.module), alg, region_code, fleet, label,
                               f"{token['label']} ({token['serial']})", now, backup_dir)
    with tempfile.TemporaryDirectory(prefix="writroot-request-") as tmp:
        for fname, data in request.files().items():
            (Path(tmp) / fname).write_bytes(data)
        manifest = export_bundle(Path(tmp), out_path, "key-request")
    summary = {"region": region_code, "keyid": request.key.keyid,
               "algorithm": alg.name, "custody": request.custody, "bundle": str(out_path),
               "bundle_sha256": manifest.sha256, "read_aloud": manifest.words}
    if as_json:
        print_json(summary)
        return
    out = console()
    out.print(f"[bold]{region_code}[/bold] regional root {alg.name}, {request.custody} custody")
    out.print(f"  keyid        {hex_groups(request.key.keyid)}")
    out.print(f"  PGP words    {pgp_words(bytes.fromhex(request.key.keyid))}")
    out.print(f"  request      {out_path}")
    out.print(f"  read aloud   {manifest.words}")
