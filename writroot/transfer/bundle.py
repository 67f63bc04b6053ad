"""Export, read, import and inspect bundles: everything is verified in memory before any write."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from writroot.errors import BadInput, VerificationFailed
from writroot.jsonio import read_capped
from writroot.transfer import rules
from writroot.transfer.manifest import Manifest, build_manifest, check_expect, parse_manifest
from writroot.transfer.tarball import pack, unpack
from writroot.transfer.tree import check_new, read_tree, write_file, write_tree


def _is_tar(path: Path) -> bool:
    return path.suffix == ".tar"


def _inside(child: Path, parent: Path) -> bool:
    child, parent = child.parent.resolve() / child.name, parent.resolve()
    return child == parent or parent in child.parents


def _write(out: Path, manifest_bytes: bytes, files: dict[str, bytes]) -> None:
    try:
        if _is_tar(out):
            write_file(out, pack([(rules.MANIFEST_NAME, manifest_bytes), *sorted(files.items())]))
        else:
            write_tree(out, {rules.MANIFEST_NAME: manifest_bytes, **files})
    except OSError as exc:
        raise BadInput(f"cannot write: {exc.strerror}", str(out)) from None


def is_sealed_key(data: bytes) -> bool:
    """A sealed private-key backup (`writroot-key/1` record with a sealed blob)."""
    compact = data[:1024 * 1024].replace(b" ", b"").replace(b"\n", b"")
    return b'"format":"writroot-key/' in compact and b'"sealed":{' in compact


def export_bundle(src_dir: Path, out: Path, kind: str, *, include_sealed: bool = False
                  ) -> Manifest:
    """Bundle every regular file under `src_dir` into `out` (a new directory, or a new `.tar`).

    A sealed private-key backup is refused unless `include_sealed`: it is useless without
    the token's KEK, but it is still key material and crosses the gap only on purpose."""
    if not src_dir.is_dir():
        raise BadInput("not a directory", str(src_dir))
    if _inside(out, src_dir):
        raise BadInput(f"the output is inside the directory being exported ({src_dir})", str(out))
    rules.check_kind(kind, "kind")
    check_new(out, "output")
    files = read_tree(src_dir, rules.MAX_FILES, rules.MAX_TOTAL_BYTES)
    if not include_sealed:
        for path, data in sorted(files.items()):
            if is_sealed_key(data):
                raise BadInput("is a sealed private-key backup; pass --include-sealed to carry "
                               "it on purpose", f"{src_dir}: {rules.show(path)}")
    return export_files(files, out, kind, str(src_dir))


def export_files(files: dict[str, bytes], out: Path, kind: str, where: str) -> Manifest:
    """Write `files` (relative path -> bytes) as bundle `out` with its manifest."""
    rules.check_kind(kind, "kind")
    check_new(out, "output")
    for path in files:
        rules.check_path(path, f"{where}: {rules.show(path)}")
        if path.casefold() == rules.MANIFEST_NAME.casefold():
            raise BadInput(f"{rules.MANIFEST_NAME} is reserved for the bundle's manifest",
                           f"{where}: {path}")
    if not files:
        raise BadInput("no files to export", where)
    manifest, raw = build_manifest(kind, files, f"{where}: {rules.MANIFEST_NAME}")
    _write(out, raw, files)
    return manifest


def _load(src: Path) -> dict[str, bytes]:
    """The bundle's files, manifest included, with the structural (hostile input) checks."""
    where = str(src)
    max_files = rules.MAX_FILES + 1
    max_total = rules.MAX_TOTAL_BYTES + rules.MAX_MANIFEST_BYTES
    try:
        mode = os.stat(src).st_mode
    except OSError as exc:
        raise BadInput(f"cannot read: {exc.strerror}", where) from None
    if stat.S_ISDIR(mode):
        return read_tree(src, max_files, max_total)
    if not stat.S_ISREG(mode):
        raise BadInput("not a directory or a tar file", where)
    # The one capped read: a file swapped for a FIFO or device after the stat is refused.
    data = read_capped(src, rules.max_tar_bytes())
    return unpack(data, where, max_files, max_total)


def _check_contents(manifest: Manifest, found: dict[str, bytes], where: str) -> None:
    """Exactly the listed files, each with the listed size and digest."""
    listed = {f.path for f in manifest.files}
    for path in sorted(found):
        if path not in listed:
            raise VerificationFailed("file is not listed in the manifest",
                                     f"{where}: {rules.show(path)}")
    for i, f in enumerate(manifest.files):
        at = f"{where}: {rules.MANIFEST_NAME}.files[{i}]"
        data = found.get(f.path)
        if data is None:
            raise VerificationFailed(f"{f.path} is listed but missing from the bundle",
                                     f"{at}.path")
        if len(data) != f.size:
            raise VerificationFailed(f"{f.path} is {len(data)} bytes; the manifest says "
                                     f"{f.size}", f"{at}.size")
        actual = hashlib.sha256(data).hexdigest()
        if actual != f.sha256:
            raise VerificationFailed(f"{f.path} has SHA-256 {actual}; the manifest says "
                                     f"{f.sha256}", f"{at}.sha256")


def read_bundle(src: Path, expect: str | None = None, *,
                kind: str | None = None) -> tuple[Manifest, dict[str, bytes]]:
    """Verify a bundle in memory; return its manifest and its files (manifest excluded).

    `expect` is the manifest SHA-256 or the read-aloud words from the other side of the gap;
    `kind`, if given, is the kind of bundle the caller is waiting for.
    """
    return check_bundle(_load(src), str(src), expect, kind=kind)


def read_bundle_bytes(data: bytes, where: str, expect: str | None = None, *,
                      kind: str | None = None) -> tuple[Manifest, dict[str, bytes]]:
    """`read_bundle` of a tar file held in memory (a bundle inside an audit package)."""
    found = unpack(data, where, rules.MAX_FILES + 1,
                   rules.MAX_TOTAL_BYTES + rules.MAX_MANIFEST_BYTES)
    return check_bundle(found, where, expect, kind=kind)


def check_bundle(found: dict[str, bytes], src: str, expect: str | None = None, *,
                 kind: str | None = None) -> tuple[Manifest, dict[str, bytes]]:
    """A bundle's files (manifest included) checked against its manifest."""
    manifest_where = f"{src}: {rules.MANIFEST_NAME}"
    raw = found.pop(rules.MANIFEST_NAME, None)
    if raw is None:
        raise BadInput(f"no {rules.MANIFEST_NAME} in the bundle", src)
    manifest = parse_manifest(raw, manifest_where)
    if kind is not None and manifest.kind != kind:
        raise BadInput(f"this is a {manifest.kind!r} bundle, not {kind!r}",
                       f"{manifest_where}.kind")
    if expect is not None:
        check_expect(manifest, expect, manifest_where)
    _check_contents(manifest, found, src)
    return manifest, {f.path: found[f.path] for f in manifest.files}


def import_bundle(src: Path, dest: Path, expect: str | None = None, *,
                  kind: str | None = None) -> Manifest:
    """Verify `src`, then create directory `dest` holding its files and manifest, all or nothing."""
    check_new(dest, "destination")
    manifest, files = read_bundle(src, expect, kind=kind)
    try:
        write_tree(dest, {rules.MANIFEST_NAME: manifest.to_bytes(), **files}, private=True)
    except OSError as exc:
        raise BadInput(f"cannot write: {exc.strerror}", str(dest)) from None
    return manifest


def inspect_bundle(src: Path, expect: str | None = None) -> Manifest:
    """Every check `import_bundle` makes; writes nothing."""
    return read_bundle(src, expect)[0]
