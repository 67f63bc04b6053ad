"""`writroot region keygen`: the region's side of regional-root issuance and rotation."""

from __future__ import annotations

import contextlib
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
@click.option("--recovery-holder", "holders", multiple=True, metavar="ID",
              help="A recovery-share holder (repeat, N times): seal the new key under a "
              "recovery key split M-of-N among them (wrapped custody only).")
@click.option("--recovery-threshold", type=int, metavar="M",
              help="M, the shares a restore needs (as the fleet policy's recovery_threshold).")
@click.option("--shares-out", type=click.Path(path_type=Path, file_okay=False),
              help="New directory for the share files, each under its holder's passphrase "
              "(WRITROOT_SHARE_PASSPHRASE_<HOLDER> or asked); without it, shares are shown "
              "on the terminal, once per holder.")
@click.option("--log-key-label", metavar="LABEL",
              help="Also make the region's ML-DSA-44 log key (DESIGN §6a) on this token, "
              "named in the request and signing it too.")
@json_option
def keygen(module: str | None, token_label: str | None, token_serial: str | None,
           pin_shares: tuple[str, ...], pin_source: str, region_code: str, fleet: str,
           label: str, algorithm: str, out_path: Path, backup_dir: Path | None,
           holders: tuple[str, ...], recovery_threshold: int | None, shares_out: Path | None,
           log_key_label: str | None, as_json: bool) -> None:
    """Generate the regional root in this region's HSM; export a key request whose
    self-signature proves possession, as a transfer bundle for the fleet ceremony.
    With --recovery-holder, the key is born with a recovery split (docs/custody.md §10)."""
    from writroot.ceremony.review import fingerprint
    from writroot.crypto.algorithms import by_name
    from writroot.crypto.fingerprint import hex_groups
    from writroot.crypto.keys import wipe
    from writroot.errors import BadInput
    from writroot.hsm.custody import Custody
    from writroot.hsm.token import TokenSpec, default_module, open_session, token_facts
    from writroot.outputs import check_destination
    from writroot.region import make_request
    from writroot.statements import region_check
    from writroot.statements.schema import name
    from writroot.transfer import export_bundle

    region_check(region_code, "--region")
    name(fleet, "--fleet")
    if log_key_label is not None:
        name(log_key_label, "--log-key-label")
        if log_key_label == label:
            raise BadInput("the log key needs a label of its own", "--log-key-label")
    alg = by_name(algorithm, "--algorithm")
    if out_path.exists():
        raise BadInput("exists already (outputs are write-once)", str(out_path))
    check_destination(out_path, "key request")  # before the HSM makes a key
    spec = TokenSpec(module or default_module(), token_label, token_serial, pin_source)
    now = datetime.now(UTC).replace(microsecond=0)
    escrow, handout = _recovery(fleet, list(holders), recovery_threshold, shares_out)
    try:
        pin = shares_pin(pin_shares)
        with open_session(spec, rw=True, pin_bytes=pin) as session:
            wipe(pin)
            custody = Custody(session, spec.module)
            token = token_facts(session.token)
            try:
                request = make_request(custody, alg, region_code, fleet,
                                       label, f"{token['label']} ({token['serial']})", now,
                                       backup_dir, escrow, log_key_label)
                if escrow is not None and handout is not None:
                    handout.give(escrow.split)
                with tempfile.TemporaryDirectory(prefix="writroot-request-") as tmp:
                    for fname, data in request.files().items():
                        (Path(tmp) / fname).parent.mkdir(parents=True, exist_ok=True)
                        (Path(tmp) / fname).write_bytes(data)
                    manifest = export_bundle(Path(tmp), out_path, "key-request")
                if handout is not None:
                    handout.publish()
            except BaseException:
                # No request left the machine: the new key must not stay on the token, able
                # to sign, with nobody knowing of it (the same rule as a ceremony run).
                for record in custody.keys():
                    if record.label in (label, log_key_label):
                        with contextlib.suppress(Exception):
                            custody.destroy_key(record)
                raise
    finally:
        if escrow is not None:
            escrow.split.wipe()
        if handout is not None:
            handout.close()
    fp = fingerprint(request.key.keyid)
    summary: dict[str, Any] = {
        "region": region_code, "keyid": request.key.keyid, "fingerprint": fp,
        "algorithm": alg.name, "custody": request.custody, "bundle": str(out_path),
        "manifest_sha256": manifest.sha256, "words": manifest.words}
    if request.log_key is not None:
        summary["log_key"] = {"label": log_key_label, "keyid": request.log_key.keyid}
    if request.recovery is not None:
        split = request.recovery["split"]
        summary["recovery"] = {"split": split["split"], "threshold": split["threshold"],
                               "shares": split["shares"],
                               "holders": [h["id"] for h in split["holders"]],
                               "shares_out": str(shares_out) if shares_out else None}
    if as_json:
        print_json(summary)
        return
    out = console()
    out.print(f"[bold]{region_code}[/bold] regional root {alg.name}, {request.custody} custody")
    out.print(f"  keyid            {fp['groups']}", markup=False)
    out.print(f"  PGP words        {fp['words']}", markup=False)
    if request.log_key is not None:
        out.print(f"  log key          {hex_groups(request.log_key.keyid)}", markup=False)
    out.print(f"  request          {out_path}", markup=False)
    out.print(f"  manifest sha256  {hex_groups(manifest.sha256)}", markup=False)
    out.print(f"  read aloud       {manifest.words}", markup=False)
    if "recovery" in summary:
        rec = summary["recovery"]
        out.print(f"  recovery split   {rec['split']} ({rec['threshold']} of {rec['shares']}: "
                  f"{', '.join(rec['holders'])})", markup=False)


def _recovery(fleet: str, holders: list[str], threshold: int | None,
              shares_out: Path | None) -> tuple[Any, Any]:
    """The escrow and the share hand-out, checked before the HSM opens (or none)."""
    from writroot.errors import BadInput

    if not holders:
        if threshold is not None or shares_out is not None:
            raise BadInput("--recovery-threshold and --shares-out need --recovery-holder",
                           "--recovery-holder")
        return None, None
    if threshold is None:
        raise BadInput("a recovery split needs --recovery-threshold M", "--recovery-threshold")
    from writroot.recovery.escrow import Escrow
    from writroot.recovery.handout import ConsoleHandout, FileHandout
    from writroot.statements.schema import name

    for holder in holders:
        name(holder, "--recovery-holder")
    escrow = Escrow(fleet, "regional-root", {"recovery_threshold": threshold}, holders)
    handout = FileHandout(shares_out) if shares_out else ConsoleHandout(console())
    try:
        handout.check(holders)
    except BaseException:
        escrow.split.wipe()
        handout.close()
        raise
    return escrow, handout
