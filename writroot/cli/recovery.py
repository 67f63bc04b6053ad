"""`writroot recovery check-share|restore|rehearse`: fleet-root recovery (docs/runbook.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from writroot.cli.common import console, json_option, print_json

SHARE_HELP = ("A share: file:PATH (passphrase from WRITROOT_SHARE_PASSPHRASE_<HOLDER> or "
              "asked), prompt (type the words), or env:VARIABLE. Repeat once per share.")


@click.group()
def recovery() -> None:
    """Recovery shares: check one, restore a key in a ceremony, rehearse a restore."""


def _inputs(shares: tuple[str, ...]) -> list[Any]:
    from writroot.recovery.collect import ShareInput

    return [ShareInput(s) for s in shares]


@recovery.command("check-share")
@click.argument("share")
@click.option("--recovery", "recovery_file", type=click.Path(path_type=Path, dir_okay=False),
              help="The split's recovery file (recovery/<split>.recovery.json): confirm the "
              "share is one of its holders'.")
@json_option
def check_share(share: str, recovery_file: Path | None, as_json: bool) -> None:
    """Confirm a share is well formed (SLIP-39 checksum) and, given the recovery file, that it
    belongs to that split. Needs no token; shows only the split, member index and holder."""
    from writroot.errors import VerificationFailed
    from writroot.jsonio import read_json_file
    from writroot.recovery.blob import read_recovery
    from writroot.recovery.collect import ShareInput
    from writroot.recovery.sharefile import public_fields
    from writroot.recovery.split import holder_of, share_facts

    source = ShareInput(share)
    mnemonic = source.read(1)
    facts = share_facts(mnemonic, source.where)
    report: dict[str, Any] = {"checksum": "ok", "member_index": facts.member_index,
                              "threshold": facts.threshold, "slip39_identifier": facts.slip39_id}
    if share.startswith("file:"):
        public = public_fields(read_json_file(Path(source.where)), source.where)
        report.update(split=public["split"], holder=public["holder"])
    if recovery_file is not None:
        blob = read_recovery(recovery_file)
        try:
            holder = holder_of(blob.split, mnemonic, source.where)
        except Exception as exc:
            raise VerificationFailed(str(getattr(exc, "message", exc)), source.where) from None
        if "holder" in report and report["holder"] != holder:
            raise VerificationFailed(f"the file says {report['holder']} but the share is "
                                     f"{holder}'s", source.where)
        report.update(split=blob.split_id, holder=holder, keyid=blob.keyid, belongs=True)
    del mnemonic
    if as_json:
        print_json(report)
        return
    out = console()
    for name in ("split", "holder", "member_index", "threshold", "checksum", "keyid"):
        if name in report:
            out.print(f"{name:<13} {report[name]}")
    if report.get("belongs"):
        out.print("this share belongs to the split")


@recovery.command()
@click.argument("locked", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--approvals", "approvals", multiple=True, required=True,
              type=click.Path(path_type=Path), help="Approval files or directories.")
@click.option("--host", "host_file", type=click.Path(path_type=Path, dir_okay=False),
              required=True, help="Host profile YAML of the fresh token.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              required=True, help="New directory for every output (published all at once).")
@click.option("--share", "shares", multiple=True, required=True, metavar="SOURCE",
              help=SHARE_HELP)
@click.option("--shares-out", type=click.Path(path_type=Path, file_okay=False),
              help="For a resplit-recovery plan: new directory for the new share files.")
@click.option("--yes", is_flag=True, help="Do not ask for the typed confirmation (CI).")
@click.option("--allow-network", is_flag=True, help="Run with network interfaces up (CI).")
@json_option
def restore(locked: Path, approvals: tuple[Path, ...], host_file: Path, out_dir: Path,
            shares: tuple[str, ...], shares_out: Path | None, yes: bool, allow_network: bool,
            as_json: bool) -> None:
    """Run an approved restore-key plan: rebuild the key from M shares into the token."""
    from writroot.ceremony.host import load_host_profile
    from writroot.ceremony.runner import run as run_plan
    from writroot.recovery.handout import FileHandout
    from writroot.recovery.session import RecoveryIO

    host = load_host_profile(host_file)

    def confirm(plan_doc: Any) -> bool:
        if yes:
            return True
        typed = click.prompt(f"type the ceremony id ({plan_doc.ceremony}) to restore",
                             default="", show_default=False)
        return bool(typed == plan_doc.ceremony)

    io = RecoveryIO(FileHandout(shares_out) if shares_out else None, _inputs(shares))
    result = run_plan(locked, list(approvals), host, out_dir, confirm=confirm,
                      allow_network=allow_network, recovery=io)
    summary = {"out": str(result.out_dir), "restored_keyid": result.signer_keyid,
               "quorum": result.tally.to_json(), "outputs": result.outputs}
    if as_json:
        print_json(summary)
        return
    out = console()
    out.print(f"restored {result.signer_keyid} into the token; its ceremony record verified")
    for name in result.outputs:
        out.print(f"  wrote {result.out_dir / name}")


@recovery.command()
@click.option("--recovery", "recovery_file", required=True,
              type=click.Path(path_type=Path, dir_okay=False),
              help="The split's recovery file (recovery/<split>.recovery.json).")
@click.option("--anchor", required=True, metavar="FINGERPRINT|PEMFILE",
              help="The pinned key the restored key must be (fingerprint or PEM).")
@click.option("--share", "shares", multiple=True, required=True, metavar="SOURCE",
              help=SHARE_HELP)
@click.option("--out", "out_file", required=True, type=click.Path(path_type=Path,
                                                                  dir_okay=False),
              help="The signed rehearsal record to write (for the ceremony binder).")
@json_option
def rehearse(recovery_file: Path, anchor: str, shares: tuple[str, ...], out_file: Path,
             as_json: bool) -> None:
    """Restore into a throwaway SoftHSM2 token, sign a rehearsal record, verify it under the
    anchor, destroy the token. Publishes no key and no artifact."""
    from writroot.errors import BadInput
    from writroot.outputs import check_destination, publish_file
    from writroot.recovery.blob import read_recovery
    from writroot.recovery.rehearse import rehearse as run_rehearsal
    from writroot.verify.files import resolve_anchor

    check_destination(out_file, "rehearsal record")
    pinned = resolve_anchor(anchor)
    key = pinned.key or read_recovery(recovery_file).key
    if key.keyid != pinned.keyid:
        raise BadInput(f"the recovery file restores {key.keyid}, not the anchor "
                       f"{pinned.keyid}", "--anchor")
    done = run_rehearsal(recovery_file, key, _inputs(shares),
                         datetime.now(UTC).replace(microsecond=0))
    publish_file(out_file, done.envelope.dumps())
    if as_json:
        print_json({**done.to_json(), "record": str(out_file)})
        return
    out = console()
    out.print(f"rehearsal: split {done.split} restored {done.keyid} with the shares of "
              f"{', '.join(done.holders)}; the record verifies under the anchor; the throwaway "
              f"token was {'destroyed' if done.token_destroyed else 'NOT destroyed'}")
    out.print(f"record written to {out_file}")
