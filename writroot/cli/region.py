"""`writroot region keygen`: the region's side of regional-root issuance and rotation."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import click

from writroot.cli.common import console, json_option, print_json, shares_pin, token_options


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
           pin_shares: tuple[str, ...], pin_source: str, region_code: str, fleet: str,
           label: str, algorithm: str, out_path: Path, backup_dir: Path | None,
           as_json: bool) -> None:
    """Generate the regional root in this region's HSM; export a key request whose
    self-signature proves possession, as a transfer bundle for the fleet ceremony."""
    from writroot.ceremony.review import fingerprint
    from writroot.crypto.algorithms import by_name
    from writroot.crypto.fingerprint import hex_groups
    from writroot.crypto.keys import wipe
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
    pin = shares_pin(pin_shares)
    with open_session(spec, rw=True, pin_bytes=pin) as session:
        wipe(pin)
        token = token_facts(session.token)
        request = make_request(Custody(session, spec.module), alg, region_code, fleet, label,
                               f"{token['label']} ({token['serial']})", now, backup_dir)
    with tempfile.TemporaryDirectory(prefix="writroot-request-") as tmp:
        for fname, data in request.files().items():
            (Path(tmp) / fname).write_bytes(data)
        manifest = export_bundle(Path(tmp), out_path, "key-request")
    fp = fingerprint(request.key.keyid)
    summary = {"region": region_code, "keyid": request.key.keyid, "fingerprint": fp,
               "algorithm": alg.name, "custody": request.custody, "bundle": str(out_path),
               "manifest_sha256": manifest.sha256, "words": manifest.words}
    if as_json:
        print_json(summary)
        return
    out = console()
    out.print(f"[bold]{region_code}[/bold] regional root {alg.name}, {request.custody} custody")
    out.print(f"  keyid            {fp['groups']}", markup=False)
    out.print(f"  PGP words        {fp['words']}", markup=False)
    out.print(f"  request          {out_path}", markup=False)
    out.print(f"  manifest sha256  {hex_groups(manifest.sha256)}", markup=False)
    out.print(f"  read aloud       {manifest.words}", markup=False)
