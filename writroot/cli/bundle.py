"""`writroot bundle export|import|inspect`: thin shell over writroot.transfer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from writroot.cli.common import console, json_option, print_json

if TYPE_CHECKING:
    from writroot.transfer import Manifest

_EXPECT_HELP = ("The manifest digest read aloud on the other side of the gap: the words, or the "
                "full SHA-256 in hex. Case and spacing do not matter.")


@click.group()
def bundle() -> None:
    """Air-gap transfer bundles: files, a manifest of their SHA-256s, a digest to read aloud.

    A bundle is a directory or a .tar file. Read the digest aloud on both sides of the gap and
    give it to `import --expect`; nothing is written unless every check holds.
    """


def _report(action: str, manifest: Manifest, bundle_path: Path, dest: Path | None,
            expect: str | None, as_json: bool) -> None:
    if as_json:
        obj: dict[str, Any] = {**manifest.to_json(), "action": action,
                               "path": str(bundle_path),
                               "layout": "directory" if bundle_path.is_dir() else "tar",
                               "expect_matched": None if expect is None else True}
        if dest is not None:
            obj["dest"] = str(dest)
        print_json(obj)
        return
    from writroot.crypto.fingerprint import hex_groups

    out = console()
    count = len(manifest.files)
    head = {"export": f"exported {count} files ({manifest.total_size} bytes) to {bundle_path}",
            "import": f"imported {count} files ({manifest.total_size} bytes) from {bundle_path} "
                      f"into {dest}",
            "inspect": f"{bundle_path}: {count} files ({manifest.total_size} bytes), all "
                       "verified"}[action]
    from writroot.display import inert

    out.print(inert(head), markup=False)
    out.print(f"kind        {manifest.kind}", markup=False)
    for f in manifest.files:
        out.print(f"  {f.path}  ({f.size} bytes)", markup=False)
        out.print(f"      {hex_groups(f.sha256)}", markup=False)
    out.print(f"manifest    {hex_groups(manifest.sha256)}", markup=False)
    out.print(f"[bold]read aloud:  {manifest.words}[/bold]")
    if expect is not None:
        out.print("[green]matches the digest read from the other side (--expect)[/green]")
    elif action == "import":
        out.print("[yellow]not compared: no --expect given. Compare the words above with the "
                  "sender's before using these files.[/yellow]")


@bundle.command("export")
@click.argument("src_dir", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--kind", default="files", show_default=True, metavar="NAME",
              help="What the bundle carries, e.g. key-request (lowercase letters, digits, -).")
@click.option("--include-sealed", is_flag=True,
              help="Carry sealed private-key backups too (refused by default).")
@json_option
def export_cmd(src_dir: Path, out: Path, kind: str, include_sealed: bool, as_json: bool) -> None:
    """Bundle every file under SRC_DIR into OUT: a new directory, or a new file ending .tar."""
    from writroot.transfer import export_bundle

    _report("export", export_bundle(src_dir, out, kind, include_sealed=include_sealed), out,
            None, None, as_json)


@bundle.command("import")
@click.argument("source", metavar="BUNDLE", type=click.Path(path_type=Path))
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--expect", metavar="DIGEST_OR_WORDS", help=_EXPECT_HELP)
@click.option("--kind", metavar="NAME", help="Refuse a bundle of any other kind.")
@json_option
def import_cmd(source: Path, dest: Path, expect: str | None, kind: str | None,
               as_json: bool) -> None:
    """Verify BUNDLE completely, then create directory DEST with its files."""
    from writroot.transfer import import_bundle

    manifest = import_bundle(source, dest, expect, kind=kind)
    _report("import", manifest, source, dest, expect, as_json)


@bundle.command("inspect")
@click.argument("source", metavar="BUNDLE", type=click.Path(path_type=Path))
@click.option("--expect", metavar="DIGEST_OR_WORDS", help=_EXPECT_HELP)
@json_option
def inspect_cmd(source: Path, expect: str | None, as_json: bool) -> None:
    """Verify BUNDLE and show its files and digest; writes nothing."""
    from writroot.transfer import inspect_bundle

    _report("inspect", inspect_bundle(source, expect), source, None, expect, as_json)
