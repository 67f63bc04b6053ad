"""`writroot publish`: the distribution set and the audit package from ceremony outputs."""

from __future__ import annotations

from pathlib import Path

import click

from writroot.cli.common import console, json_option, print_json
from writroot.display import inert


@click.command()
@click.argument("runs", nargs=-1, required=True, metavar="RUN_DIR...",
                type=click.Path(path_type=Path, file_okay=False))
@click.option("--out", "out_dir", type=click.Path(path_type=Path),
              help="Write the distribution set here (a new directory).")
@click.option("--audit-package", "package", type=click.Path(path_type=Path),
              help="Write the audit package here (a new directory, or a new file ending .tar).")
@click.option("--ceremony-dir", "ceremony_dirs", multiple=True,
              type=click.Path(path_type=Path, file_okay=False),
              help="A directory plans were locked in (repeat for each; every one is used): "
                   "OSCAL sources and catalogs, and (for the audit package) approvals, "
                   "enrolments, key requests and transfer bundles.")
@click.option("--anchor", required=True, metavar="FINGERPRINT|PEMFILE",
              help="The pinned fleet root: only revocation lists that verify from it withhold "
                   "anything.")
@click.option("--at", "at_text", metavar="TIME",
              help="Reference time for the revocation lists, UTC YYYY-MM-DDTHH:MM:SSZ "
                   "(default: now).")
@click.option("--cosigned", "returns", multiple=True, metavar="PATH",
              type=click.Path(path_type=Path, exists=True),
              help="Cosigned checkpoints and evidence files the witnesses returned (files or "
              "directories, repeatable): cosignatures join the published checkpoint.")
@click.option("--with-transcripts", is_flag=True,
              help="Put the transcripts (which hold host facts) in the distribution set too.")
@json_option
def publish(runs: tuple[Path, ...], out_dir: Path | None, package: Path | None,
            ceremony_dirs: tuple[Path, ...], anchor: str, at_text: str | None,
            returns: tuple[Path, ...], with_transcripts: bool, as_json: bool) -> None:
    """Build the distribution set (--out) and/or the audit package (--audit-package) from
    ceremony output directories. Everything is read and checked before anything is written;
    sealed keys are never published."""
    from writroot.errors import BadInput
    from writroot.transfer import check_path
    from writroot.transfer.bundle import export_files
    from writroot.transfer.publish import PACKAGE_KIND, add_returns, collect, package_files
    from writroot.transfer.tree import check_new, write_tree

    if out_dir is None and package is None:
        raise BadInput("give --out DIR, --audit-package OUT or both", "publish")
    if out_dir is not None and package is not None and out_dir.resolve() == package.resolve():
        raise BadInput("--out and --audit-package name the same path", str(package))
    for target, what in ((out_dir, "--out"), (package, "--audit-package")):
        if target is not None:
            check_new(target, what)
    from datetime import UTC, datetime

    from writroot.jsonio import parse_time
    from writroot.verify.files import resolve_anchor

    at = parse_time(at_text, "--at") if at_text else datetime.now(UTC).replace(microsecond=0)
    pub = collect(list(runs), list(ceremony_dirs), resolve_anchor(anchor), at, with_transcripts,
                  binder=package is not None)
    cosigned = add_returns(pub, list(returns))
    for rel in pub.dist:
        check_path(rel, rel)
    manifest = None
    if package is not None:
        manifest = export_files(package_files(pub), package, PACKAGE_KIND, str(package))
    if out_dir is not None:
        write_tree(out_dir, pub.dist)
    summary = {"ceremonies": pub.ceremonies, "distribution": str(out_dir) if out_dir else None,
               "files": len(pub.dist), "withheld": pub.withheld,
               "audit_package": str(package) if package else None,
               "manifest_sha256": manifest.sha256 if manifest else None,
               "words": manifest.words if manifest else None,
               "transfers": pub.transfers, "cosigned": cosigned}
    if as_json:
        print_json(summary)
        return
    out = console()
    out.print(f"published {len(pub.ceremonies)} ceremonies: {len(pub.dist)} files"
              + (f" in {out_dir}" if out_dir else ""))
    for w in pub.withheld:
        out.print(f"  withheld {inert(w['artifact'])} ({inert(w['revoked'])} is revoked; its "
                  "bundle and key are withheld too)", markup=False)
    if manifest is not None:
        out.print(f"audit package   {package}", markup=False)
        out.print(f"manifest        {manifest.sha256}", markup=False)
        out.print(f"[bold]read aloud:  {manifest.words}[/bold]")
