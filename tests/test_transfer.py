"""Air-gap transfer bundles: round trips, determinism, and every hostile bundle refused.

Each hostile case checks the error type (exit code), that the message names the file and the
field, and that nothing at all was written next to the bundle.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import shutil
import string
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli
from writroot.cli import cli
from writroot.errors import BadInput, VerificationFailed, WritrootError
from writroot.jsonio import canonical
from writroot.transfer import (
    MANIFEST_NAME,
    check_path,
    export_bundle,
    human_digest,
    import_bundle,
    inspect_bundle,
    parse_manifest,
    read_bundle,
    rules,
)

FILES = {
    "key-request.json": b'{"region": "CONUS"}\n',
    "keys/CONUS-1.pem": b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n",
    "keys/sub/notes.txt": b"",
    "z-last.bin": bytes(range(256)) * 12,
}


def make_src(root: Path, files: dict[str, bytes] = FILES) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def entry(path: str, data: bytes) -> dict[str, Any]:
    return {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def manifest_raw(content: dict[str, bytes], **override: Any) -> bytes:
    doc = {"bundle": 1, "kind": "key-request",
           "files": [entry(p, d) for p, d in sorted(content.items())]}
    doc.update(override)
    return canonical(doc)


Member = tuple[tarfile.TarInfo, bytes | None]


def reg(name: str, data: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def tar_bytes(members: list[Member]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


GOOD = {"a.txt": b"alpha\n", "b/c.txt": b"charlie\n"}


def hostile_tar(tmp: Path, *extra: Member, files: dict[str, bytes] = GOOD,
                manifest: bytes | None = None, with_manifest: bool = True) -> Path:
    """bundle.tar: a manifest for `files`, the files, then the `extra` members."""
    members = [reg(MANIFEST_NAME, manifest if manifest is not None else manifest_raw(files))] \
        if with_manifest else []
    members += [reg(p, d) for p, d in sorted(files.items())]
    path = tmp / "bundle.tar"
    path.write_bytes(tar_bytes([*members, *extra]))
    return path


def refused(src: Path, exc: type[WritrootError], *fragments: str,
            expect: str | None = None) -> str:
    """import and inspect both refuse with `exc`; the message names the fragments; no writes."""
    dest = src.parent / "dest"
    before = sorted(os.listdir(src.parent))
    with pytest.raises(WritrootError) as info:
        import_bundle(src, dest, expect)
    assert type(info.value) is exc, info.value
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, text
    assert not os.path.lexists(dest)
    assert sorted(os.listdir(src.parent)) == before  # no staging left behind either
    with pytest.raises(exc):
        inspect_bundle(src, expect)
    return text


# --- round trips, determinism, format ---------------------------------------------------------


def test_round_trip_dir_to_dir(tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    made = export_bundle(src, tmp_path / "out", "key-request")
    assert tree(tmp_path / "out") == {**FILES, MANIFEST_NAME: made.to_bytes()}
    got = import_bundle(tmp_path / "out", tmp_path / "dest", made.words)
    assert got == made
    assert tree(tmp_path / "dest") == tree(tmp_path / "out")
    assert [f.path for f in made.files] == sorted(FILES)
    assert made.kind == "key-request" and made.total_size == sum(map(len, FILES.values()))
    for path in (tmp_path / "out").rglob("*"):  # an export is for carrying: world-readable
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644), path
    # An import keeps what came across the gap to its owner (whatever the tar's modes said).
    for path in (tmp_path / "dest").rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path
    assert (tmp_path / "dest").stat().st_mode & 0o777 == 0o700


def test_round_trip_dir_to_tar_to_dir(tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    made = export_bundle(src, tmp_path / "b.tar", "key-request")
    assert (tmp_path / "b.tar").stat().st_mode & 0o777 == 0o644
    manifest, files = read_bundle(tmp_path / "b.tar", made.sha256)
    assert manifest == made and files == FILES and list(files) == sorted(FILES)
    import_bundle(tmp_path / "b.tar", tmp_path / "dest", made.sha256)
    assert tree(tmp_path / "dest") == {**FILES, MANIFEST_NAME: made.to_bytes()}
    # The imported directory is itself a bundle with the same digest.
    assert inspect_bundle(tmp_path / "dest") == made
    assert sorted(os.listdir(tmp_path)) == ["b.tar", "dest", "src"]


def test_exports_are_deterministic(tmp_path: Path) -> None:
    one = make_src(tmp_path / "one")
    two = make_src(tmp_path / "two", dict(reversed(FILES.items())))
    for path in two.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
        if path.is_file():
            path.chmod(0o600)
    first = export_bundle(one, tmp_path / "1.tar", "key-request")
    second = export_bundle(two, tmp_path / "2.tar", "key-request")
    assert (tmp_path / "1.tar").read_bytes() == (tmp_path / "2.tar").read_bytes()
    assert first == second
    export_bundle(one, tmp_path / "d1", "key-request")
    export_bundle(two, tmp_path / "d2", "key-request")
    assert tree(tmp_path / "d1") == tree(tmp_path / "d2")


def test_tar_members_carry_no_varying_metadata(tmp_path: Path) -> None:
    long_name = "deep/" + "n" * 120 + ".txt"
    src = make_src(tmp_path / "src", {**FILES, long_name: b"long"})
    export_bundle(src, tmp_path / "b.tar", "key-request")
    with tarfile.open(tmp_path / "b.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [MANIFEST_NAME, *sorted([*FILES, long_name])]
    for m in members:
        assert (m.type, m.mode, m.mtime, m.uid, m.gid, m.uname, m.gname) == \
            (tarfile.REGTYPE, 0o644, 0, 0, 0, "", "")
        assert m.pax_headers == ({"path": long_name} if m.name == long_name else {})


def test_manifest_bytes_and_words_are_pinned(tmp_path: Path) -> None:
    src = make_src(tmp_path / "src", {"a.txt": b"abc"})
    made = export_bundle(src, tmp_path / "out", "key-request")
    raw = (tmp_path / "out" / MANIFEST_NAME).read_bytes()
    assert raw == (b'{"bundle":1,"files":[{"path":"a.txt","sha256":"ba7816bf8f01cfea414140de5dae2'
                   b'223b00361a396177a9cb410ff61f20015ad","size":3}],"kind":"key-request"}')
    assert made.sha256 == hashlib.sha256(raw).hexdigest()
    digest = bytes.fromhex(made.sha256)
    words, hex_part = made.words.split()[:8], made.words.split()[8:]
    assert len(words) == 8 and len(hex_part) == 4
    assert "".join(hex_part).lower() == digest[8:16].hex()
    assert made.words == human_digest(made.sha256)
    assert parse_manifest(raw, "m") == made


def test_human_digest_known_value() -> None:
    sha = hashlib.sha256(b"abc").hexdigest()
    # SHA-256("abc") = BA7816BF 8F01CFEA 4141 40DE 5DAE 2223 ...: bytes 0-7 as words, 8-15 as hex.
    assert human_digest(sha) == ("shadow indigo backward rebellion payday adviser "
                                 "stagehand undaunted 4141 40DE 5DAE 2223")


@pytest.mark.parametrize("typed", [
    "{words}", "{upper}", "  {spaced}  ", "{sha}", "{sha_upper}", "{sha_groups}"])
def test_expect_accepts_words_or_digest_in_any_case_and_spacing(tmp_path: Path,
                                                                 typed: str) -> None:
    made = export_bundle(make_src(tmp_path / "src"), tmp_path / "b.tar", "key-request")
    from writroot.crypto.fingerprint import hex_groups

    text = typed.format(words=made.words, upper=made.words.upper(),
                        spaced="   ".join(made.words.lower().split()), sha=made.sha256,
                        sha_upper=made.sha256.upper(), sha_groups=hex_groups(made.sha256))
    assert inspect_bundle(tmp_path / "b.tar", text) == made


def test_inspect_writes_nothing(tmp_path: Path) -> None:
    made = export_bundle(make_src(tmp_path / "src"), tmp_path / "b.tar", "key-request")
    before = sorted(os.listdir(tmp_path))
    assert inspect_bundle(tmp_path / "b.tar") == made
    assert sorted(os.listdir(tmp_path)) == before


def test_kind_is_checked_when_asked(tmp_path: Path) -> None:
    export_bundle(make_src(tmp_path / "src"), tmp_path / "b.tar", "key-response")
    with pytest.raises(BadInput, match=r"b\.tar: MANIFEST\.json\.kind"):
        read_bundle(tmp_path / "b.tar", kind="key-request")
    assert read_bundle(tmp_path / "b.tar", kind="key-response")[0].kind == "key-response"


@pytest.mark.skipif(shutil.which("tar") is None, reason="no tar program")
@pytest.mark.parametrize("fmt", ["gnu", "pax"])
def test_interoperates_with_system_tar(tmp_path: Path, fmt: str) -> None:
    made = export_bundle(make_src(tmp_path / "src"), tmp_path / "b.tar", "key-request")
    (tmp_path / "x").mkdir()
    subprocess.run(["tar", "-xf", str(tmp_path / "b.tar"), "-C", str(tmp_path / "x")],
                   check=True)
    assert tree(tmp_path / "x") == {**FILES, MANIFEST_NAME: made.to_bytes()}
    # A third party's archive of the same files (with directory entries) reads the same.
    subprocess.run(["tar", f"--format={fmt}", "-cf", str(tmp_path / "theirs.tar"), "-C",
                    str(tmp_path / "x"),
                    MANIFEST_NAME, "key-request.json", "keys", "z-last.bin"], check=True)
    assert inspect_bundle(tmp_path / "theirs.tar") == made


# --- hostile tar members ----------------------------------------------------------------------


def test_absolute_member_refused(tmp_path: Path) -> None:
    src = hostile_tar(tmp_path, reg("/etc/cron.d/evil", b"x"))
    refused(src, BadInput, "bundle.tar: /etc/cron.d/evil", "absolute")


def test_dotdot_member_refused(tmp_path: Path) -> None:
    src = hostile_tar(tmp_path, reg("b/../../evil", b"x"))
    refused(src, BadInput, "bundle.tar: b/../../evil", "'..'")


def test_symlink_member_refused(tmp_path: Path) -> None:
    src = hostile_tar(tmp_path, special("link", tarfile.SYMTYPE, "/etc/passwd"))
    refused(src, BadInput, "bundle.tar: link", "symbolic link")


def test_hardlink_member_refused(tmp_path: Path) -> None:
    src = hostile_tar(tmp_path, special("hard", tarfile.LNKTYPE, "a.txt"))
    refused(src, BadInput, "bundle.tar: hard", "hard link")


@pytest.mark.parametrize(("kind", "named"), [
    (tarfile.CHRTYPE, "character device"), (tarfile.BLKTYPE, "block device"),
    (tarfile.FIFOTYPE, "FIFO"), (tarfile.CONTTYPE, "contiguous file")])
def test_device_and_fifo_members_refused(tmp_path: Path, kind: bytes, named: str) -> None:
    src = hostile_tar(tmp_path, special("dev", kind))
    refused(src, BadInput, "bundle.tar: dev", named)


@pytest.mark.parametrize("name", ["a\\b.txt", "a\nb", "caf\u00e9.txt", "a b.txt", "./a.txt"])
def test_odd_member_names_refused(tmp_path: Path, name: str) -> None:
    src = hostile_tar(tmp_path, reg(name, b"x"))
    refused(src, BadInput, f"bundle.tar: {rules.show(name)}")


def test_file_not_in_manifest_refused(tmp_path: Path) -> None:
    src = hostile_tar(tmp_path, reg("extra.txt", b"smuggled"))
    refused(src, VerificationFailed, "bundle.tar: extra.txt", "not listed")


def test_manifest_missing_from_bundle_refused(tmp_path: Path) -> None:
    src = hostile_tar(tmp_path, with_manifest=False)
    refused(src, BadInput, "bundle.tar", "no MANIFEST.json")


def test_listed_file_missing_refused(tmp_path: Path) -> None:
    src = hostile_tar(tmp_path, manifest=manifest_raw({**GOOD, "gone.txt": b"?"}))
    refused(src, VerificationFailed, "bundle.tar: MANIFEST.json.files[2].path", "gone.txt",
            "missing")


def test_size_mismatch_refused(tmp_path: Path) -> None:
    src = hostile_tar(tmp_path, manifest=manifest_raw({**GOOD, "b/c.txt": b"charlie!\n"}))
    refused(src, VerificationFailed, "bundle.tar: MANIFEST.json.files[1].size", "8 bytes")


def test_digest_mismatch_refused(tmp_path: Path) -> None:
    src = hostile_tar(tmp_path, manifest=manifest_raw({**GOOD, "a.txt": b"ALPHA\n"}))
    refused(src, VerificationFailed, "bundle.tar: MANIFEST.json.files[0].sha256",
            hashlib.sha256(GOOD["a.txt"]).hexdigest())


def test_duplicate_member_refused(tmp_path: Path) -> None:
    src = hostile_tar(tmp_path, reg("a.txt", b"second copy"))
    refused(src, BadInput, "bundle.tar: a.txt", "duplicate")


def test_members_differing_only_in_case_refused(tmp_path: Path) -> None:
    src = hostile_tar(tmp_path, reg("A.TXT", b"shadow"))
    refused(src, BadInput, "bundle.tar: A.TXT", "duplicate", "case")


def test_directory_member_without_files_refused(tmp_path: Path) -> None:
    src = hostile_tar(tmp_path, special("empty", tarfile.DIRTYPE))
    refused(src, BadInput, "bundle.tar: empty", "holds no file")


def _patch_size(data: bytes, name: str, size: int) -> bytes:
    """Rewrite the size field (and checksum) of `name`'s ustar header: a lying header."""
    at = next(i for i in range(0, len(data), 512)
              if data[i:i + 100].rstrip(b"\0") == name.encode())
    header = bytearray(data[at:at + 512])
    header[124:136] = b"%011o\0" % size
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return data[:at] + bytes(header) + data[at + 512:]


def test_oversize_member_refused_before_reading(tmp_path: Path) -> None:
    # The header claims 17 MiB; the archive holds 6 bytes. The claim alone is refused.
    src = hostile_tar(tmp_path)
    src.write_bytes(_patch_size(src.read_bytes(), "a.txt", 17 * 1024 * 1024))
    refused(src, BadInput, "bundle.tar: a.txt", "claims 17825792 bytes")


def test_header_claiming_more_than_the_archive_holds_refused(tmp_path: Path) -> None:
    src = hostile_tar(tmp_path)
    src.write_bytes(_patch_size(src.read_bytes(), "b/c.txt", 40_000))
    refused(src, BadInput, "bundle.tar", "truncated")


def test_header_claiming_less_than_it_holds_refused(tmp_path: Path) -> None:
    # The rest of the content would be parsed as headers: tarfile stops quietly, we do not.
    src = hostile_tar(tmp_path, files={"big.bin": b"\xff" * 2000})
    src.write_bytes(_patch_size(src.read_bytes(), "big.bin", 10))
    refused(src, BadInput, "bundle.tar", "malformed")


def test_oversize_file_refused_at_export(tmp_path: Path) -> None:
    src = make_src(tmp_path / "src", {"big.bin": b"\0" * (rules.MAX_FILE_BYTES + 1)})
    with pytest.raises(BadInput, match=r"src: big\.bin: file is 16777217 bytes"):
        export_bundle(src, tmp_path / "b.tar", "files")
    assert not (tmp_path / "b.tar").exists()


def test_total_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_src(tmp_path / "src")
    export_bundle(src, tmp_path / "b.tar", "key-request")
    monkeypatch.setattr(rules, "MAX_TOTAL_BYTES", 1000)
    refused(tmp_path / "b.tar", BadInput, "b.tar: MANIFEST.json.files", "1000-byte cap")
    with pytest.raises(BadInput, match="src: files total more than the 1000-byte cap"):
        export_bundle(src, tmp_path / "again.tar", "key-request")


def test_too_many_files_refused(tmp_path: Path) -> None:
    many = {f"f{i:04}": b"" for i in range(rules.MAX_FILES + 1)}
    src = make_src(tmp_path / "src", many)
    with pytest.raises(BadInput, match="more than 1000 files"):
        export_bundle(src, tmp_path / "b.tar", "files")
    assert not (tmp_path / "b.tar").exists()
    tar = hostile_tar(tmp_path, files=many, manifest=b"{}")
    refused(tar, BadInput, "bundle.tar", "more than 1001 files")


def test_too_many_manifest_entries_refused(tmp_path: Path) -> None:
    many = {f"f{i:04}": b"" for i in range(rules.MAX_FILES + 1)}
    src = hostile_tar(tmp_path, manifest=manifest_raw(many))
    refused(src, BadInput, "bundle.tar: MANIFEST.json.files", "1001 files")


def test_too_many_directories_in_manifest_refused(tmp_path: Path) -> None:
    deep = {f"d{i:03}/e/f": b"" for i in range(700)}  # 700 files + 1400 directories + 1
    src = hostile_tar(tmp_path, manifest=manifest_raw(deep))
    refused(src, BadInput, "bundle.tar: MANIFEST.json.files", "2001 entries")


def test_too_many_tar_members_refused(tmp_path: Path) -> None:
    dirs = [special(f"d{i:04}", tarfile.DIRTYPE) for i in range(rules.MAX_ENTRIES)]
    src = hostile_tar(tmp_path, *dirs)
    refused(src, BadInput, "bundle.tar", f"more than {rules.MAX_ENTRIES} tar members")


def test_truncated_tar_refused(tmp_path: Path) -> None:
    src = hostile_tar(tmp_path, files={"big.bin": os.urandom(5000)})
    data = src.read_bytes()
    src.write_bytes(data[:2048 + 3000])  # inside big.bin's content
    refused(src, BadInput, "bundle.tar", "truncated")


def test_tar_cut_at_a_member_boundary_refused(tmp_path: Path) -> None:
    src = hostile_tar(tmp_path, files={"big.bin": b"x" * 1024})
    data = src.read_bytes()
    src.write_bytes(data[:1024 + 1024 + 512])  # manifest, big.bin's header, content: no end
    refused(src, BadInput, "bundle.tar", "end-of-archive")


def test_data_after_end_of_archive_refused(tmp_path: Path) -> None:
    src = hostile_tar(tmp_path)
    src.write_bytes(src.read_bytes() + tar_bytes([reg("later.txt", b"appended")]))
    refused(src, BadInput, "bundle.tar", "end-of-archive")


@pytest.mark.parametrize("data", [b"", b"not a tar at all" * 100, b"\0" * 10240])
def test_not_a_tar_refused(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "bundle.tar").write_bytes(data)
    refused(tmp_path / "bundle.tar", BadInput, "bundle.tar")


def test_compressed_tar_refused(tmp_path: Path) -> None:
    import gzip

    plain = hostile_tar(tmp_path).read_bytes()
    (tmp_path / "bundle.tar").write_bytes(gzip.compress(plain))
    refused(tmp_path / "bundle.tar", BadInput, "bundle.tar", "not a readable tar")


# --- malformed manifests ------------------------------------------------------------------------


def _raw(text: str) -> Callable[[], bytes]:
    return lambda: text.encode()


def _over(**over: Any) -> Callable[[], bytes]:
    return lambda: manifest_raw(GOOD, **over)


def _files(*entries: dict[str, Any]) -> Callable[[], bytes]:
    return lambda: canonical({"bundle": 1, "files": list(entries), "kind": "key-request"})


A, C = entry("a.txt", GOOD["a.txt"]), entry("b/c.txt", GOOD["b/c.txt"])

MALFORMED = {
    "duplicate key": (_raw('{"bundle":1,"bundle":1,"files":[],"kind":"x"}'),
                      "MANIFEST.json: duplicate key 'bundle'"),
    "not JSON": (_raw("{bundle"), "MANIFEST.json: malformed JSON"),
    "not an object": (_raw("[]"), "MANIFEST.json: expected a JSON object"),
    "unknown field": (_over(signed=True), "MANIFEST.json.signed: unknown field"),
    "missing field": (lambda: canonical({"bundle": 1, "files": [A, C]}),
                      "MANIFEST.json.kind: missing field"),
    "version 2": (_over(bundle=2), "MANIFEST.json.bundle: unsupported"),
    "version true": (_over(bundle=True), "MANIFEST.json.bundle: unsupported"),
    "bad kind": (_over(kind="Key Request"), "MANIFEST.json.kind"),
    "files not a list": (_over(files={}), "MANIFEST.json.files: expected a list"),
    "no files": (_over(files=[]), "MANIFEST.json.files: a bundle carries at least one file"),
    "unknown file field": (_files({**A, "mode": 420}, C), "MANIFEST.json.files[0].mode"),
    "missing file field": (_files({"path": "a.txt", "size": 6}, C),
                           "MANIFEST.json.files[0].sha256: missing field"),
    "absolute path": (_files(A, {**C, "path": "/etc/passwd"}),
                      "MANIFEST.json.files[1].path: absolute path"),
    "dotdot path": (_files(A, {**C, "path": "b/../../c.txt"}),
                    "MANIFEST.json.files[1].path: '..'"),
    "empty part": (_files(A, {**C, "path": "b//c.txt"}), "MANIFEST.json.files[1].path: empty"),
    "control char": (_files(A, {**C, "path": "b/c\x1b.txt"}),
                     "MANIFEST.json.files[1].path: character '\\x1b'"),
    "path not a string": (_files(A, {**C, "path": 7}), "MANIFEST.json.files[1].path"),
    "uppercase digest": (_files(A, {**C, "sha256": C["sha256"].upper()}),
                         "MANIFEST.json.files[1].sha256"),
    "short digest": (_files(A, {**C, "sha256": "ab" * 16}), "MANIFEST.json.files[1].sha256"),
    "negative size": (_files(A, {**C, "size": -1}), "MANIFEST.json.files[1].size"),
    "boolean size": (_files(A, {**C, "size": True}), "MANIFEST.json.files[1].size"),
    "float size": (_files(A, {**C, "size": 8.5}), "MANIFEST.json.files[1].size"),
    "huge size": (_files(A, {**C, "size": 2**53 - 1}), "MANIFEST.json.files[1].size"),
    "huger size": (lambda: manifest_raw(GOOD).replace(b'"size":8', b'"size":1' + b"0" * 40),
                   "MANIFEST.json.files[1].size"),
    "duplicate path": (_files(A, A, C), "MANIFEST.json.files[1].path: a.txt: duplicate path"),
    "case collision": (_files(entry("A.txt", b"x"), A, C),
                       "MANIFEST.json.files[1].path: a.txt: collides with 'A.txt'"),
    "file and directory": (_files(A, entry("b", b""), C),
                           "MANIFEST.json.files[1].path: b is a file"),
    "lists itself": (_files(entry("MANIFEST.json", b""), A, C),
                     "MANIFEST.json.files[0].path: MANIFEST.json is the manifest's own name"),
    "unsorted": (_files(C, A), "MANIFEST.json.files[1].path: files must be sorted"),
    "not canonical": (lambda: json.dumps(json.loads(manifest_raw(GOOD)), indent=1).encode(),
                      "MANIFEST.json: not in RFC 8785 canonical form"),
    "trailing newline": (lambda: manifest_raw(GOOD) + b"\n", "MANIFEST.json: not in RFC 8785"),
    "not UTF-8": (lambda: b'{"bundle":1,"kind":"\xff"}',
                  "MANIFEST.json: not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_manifest_refused(tmp_path: Path, case: str) -> None:
    make, where = MALFORMED[case]
    src = hostile_tar(tmp_path, manifest=make())
    refused(src, BadInput, f"bundle.tar: {where}")


def test_oversized_manifest_refused(tmp_path: Path) -> None:
    padding = " " * rules.MAX_MANIFEST_BYTES
    src = hostile_tar(tmp_path, manifest=(padding + manifest_raw(GOOD).decode()).encode())
    refused(src, BadInput, "bundle.tar: MANIFEST.json", "cap")


# --- the digest read aloud, destinations, exports ----------------------------------------------


@pytest.mark.parametrize("expect", ["wrong", "00" * 32, "aardvark adroitness"])
def test_wrong_expect_refused(tmp_path: Path, expect: str) -> None:
    made = export_bundle(make_src(tmp_path / "src"), tmp_path / "bundle.tar", "key-request")
    text = refused(tmp_path / "bundle.tar", VerificationFailed, "bundle.tar: MANIFEST.json",
                   made.words, expect=expect)
    assert "does not match" in text


def test_one_misheard_word_refused(tmp_path: Path) -> None:
    made = export_bundle(make_src(tmp_path / "src"), tmp_path / "bundle.tar", "key-request")
    words = made.words.split()
    words[3] = "aardvark" if words[3] != "aardvark" else "absurd"
    refused(tmp_path / "bundle.tar", VerificationFailed, "does not match",
            expect=" ".join(words))


def test_empty_expect_is_bad_input(tmp_path: Path) -> None:
    export_bundle(make_src(tmp_path / "src"), tmp_path / "bundle.tar", "key-request")
    refused(tmp_path / "bundle.tar", BadInput, "bundle.tar: MANIFEST.json", "empty",
            expect="  - ")


@pytest.mark.parametrize("layout", ["dir", "empty-dir", "file"])
def test_dest_exists_refused(tmp_path: Path, layout: str) -> None:
    export_bundle(make_src(tmp_path / "src"), tmp_path / "b.tar", "key-request")
    dest = tmp_path / "dest"
    if layout == "file":
        dest.write_bytes(b"keep me")
    else:
        dest.mkdir()
        if layout == "dir":
            (dest / "keep.txt").write_bytes(b"keep me")
    snapshot = tree(tmp_path)
    with pytest.raises(BadInput, match="dest: destination exists already"):
        import_bundle(tmp_path / "b.tar", dest)
    assert tree(tmp_path) == snapshot
    assert sorted(os.listdir(tmp_path)) == ["b.tar", "dest", "src"]


def test_dest_parent_missing_refused(tmp_path: Path) -> None:
    export_bundle(make_src(tmp_path / "src"), tmp_path / "b.tar", "key-request")
    with pytest.raises(BadInput, match="parent directory"):
        import_bundle(tmp_path / "b.tar", tmp_path / "no" / "dest")
    assert not (tmp_path / "no").exists()


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from writroot import outputs as tree_module

    export_bundle(make_src(tmp_path / "src"), tmp_path / "b.tar", "key-request")
    calls = []

    def failing(path: Path, data: bytes, mode: int = 0o644) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(path, data, mode)

    real = tree_module._write_new
    monkeypatch.setattr(tree_module, "_write_new", failing)
    with pytest.raises(BadInput, match="dest: cannot write: No space left on device"):
        import_bundle(tmp_path / "b.tar", tmp_path / "dest")
    assert sorted(os.listdir(tmp_path)) == ["b.tar", "src"]


def test_export_refuses_symlink(tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    (src / "keys" / "link.pem").symlink_to(src / "key-request.json")
    with pytest.raises(BadInput, match=r"src: keys/link\.pem: is a symbolic link"):
        export_bundle(src, tmp_path / "out", "key-request")
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_export_refuses_symlinked_directory(tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    (tmp_path / "elsewhere").mkdir()
    (src / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(BadInput, match="src: linked: is a symbolic link"):
        export_bundle(src, tmp_path / "b.tar", "key-request")
    assert not (tmp_path / "b.tar").exists()


def test_export_refuses_fifo_and_hard_link(tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    os.mkfifo(src / "pipe")
    with pytest.raises(BadInput, match="src: pipe: is a FIFO"):
        export_bundle(src, tmp_path / "b.tar", "key-request")
    (src / "pipe").unlink()
    os.link(src / "z-last.bin", src / "keys" / "twin.bin")
    with pytest.raises(BadInput, match="hard links"):
        export_bundle(src, tmp_path / "b.tar", "key-request")
    assert sorted(os.listdir(tmp_path)) == ["src"]


@pytest.mark.parametrize(("files", "message"), [
    ({"MANIFEST.json": b"{}"}, "MANIFEST.json is reserved"),
    ({"manifest.JSON": b"{}"}, "MANIFEST.json is reserved"),
    ({"my key.pem": b"x"}, "src: my key.pem: character ' '"),
    ({"A.pem": b"x", "a.pem": b"y"}, "collides with 'A.pem'"),
    ({"sub/ok.txt": b"x", "empty/": b""}, "src: empty: empty directory"),
])
def test_export_refuses_unsafe_trees(tmp_path: Path, files: dict[str, bytes],
                                     message: str) -> None:
    src = tmp_path / "src"
    for rel, data in files.items():
        if rel.endswith("/"):
            (src / rel).mkdir(parents=True)
        else:
            make_src(src, {rel: data})
    with pytest.raises(BadInput, match=message.replace(".", r"\.")):
        export_bundle(src, tmp_path / "b.tar", "key-request")
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_export_refusals_of_arguments(tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    (tmp_path / "taken.tar").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    cases = [((src, tmp_path / "taken.tar", "files"), "taken.tar: output exists already"),
             ((src, src / "inside.tar", "files"), "inside.tar: the output is inside"),
             ((src, src / "keys" / "inside", "files"), "the output is inside"),
             ((src, tmp_path / "b.tar", "Not A Kind"), "kind: kind must be"),
             ((tmp_path / "empty", tmp_path / "b.tar", "files"), "empty: no files to export"),
             ((tmp_path / "taken.tar", tmp_path / "b.tar", "files"), "not a directory")]
    for args, message in cases:
        with pytest.raises(BadInput, match=message.replace(".", r"\.")):
            export_bundle(*args)
    assert sorted(os.listdir(tmp_path)) == ["empty", "src", "taken.tar"]
    assert tree(src) == FILES


# --- hostile directory bundles ------------------------------------------------------------------


def _dir_bundle(tmp: Path) -> Path:
    export_bundle(make_src(tmp / "src"), tmp / "bundle", "key-request")
    return tmp / "bundle"


def test_directory_bundle_with_symlink_refused(tmp_path: Path) -> None:
    bundle = _dir_bundle(tmp_path)
    (bundle / "keys" / "sneaky.pem").symlink_to("/etc/passwd")
    refused(bundle, BadInput, "bundle: keys/sneaky.pem: is a symbolic link")


def test_directory_bundle_with_symlinked_file_in_place_refused(tmp_path: Path) -> None:
    bundle = _dir_bundle(tmp_path)
    (bundle / "key-request.json").unlink()
    (bundle / "key-request.json").symlink_to(tmp_path / "src" / "key-request.json")
    refused(bundle, BadInput, "bundle: key-request.json: is a symbolic link")


def test_directory_bundle_with_fifo_refused(tmp_path: Path) -> None:
    bundle = _dir_bundle(tmp_path)
    os.mkfifo(bundle / "pipe")
    refused(bundle, BadInput, "bundle: pipe: is a FIFO")


def test_directory_bundle_with_hard_link_refused(tmp_path: Path) -> None:
    bundle = _dir_bundle(tmp_path)
    os.link(bundle / "z-last.bin", tmp_path / "outside-twin")
    refused(bundle, BadInput, "bundle: z-last.bin: has other hard links")


def test_directory_bundle_with_extra_file_refused(tmp_path: Path) -> None:
    bundle = _dir_bundle(tmp_path)
    (bundle / "keys" / "extra.pem").write_bytes(b"smuggled")
    refused(bundle, VerificationFailed, "bundle: keys/extra.pem: file is not listed")


def test_directory_bundle_with_tampered_file_refused(tmp_path: Path) -> None:
    bundle = _dir_bundle(tmp_path)
    (bundle / "key-request.json").write_bytes(b'{"region": "EUCOM"}\n')
    refused(bundle, VerificationFailed, "bundle: MANIFEST.json.files[0].sha256")


def test_directory_bundle_without_manifest_refused(tmp_path: Path) -> None:
    bundle = _dir_bundle(tmp_path)
    (bundle / MANIFEST_NAME).unlink()
    refused(bundle, BadInput, "bundle: no MANIFEST.json")


def test_missing_bundle_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"nope\.tar: cannot read"):
        import_bundle(tmp_path / "nope.tar", tmp_path / "dest")
    assert os.listdir(tmp_path) == []


# --- the path rule, by property -----------------------------------------------------------------

SAFE_CHARS = string.ascii_letters + string.digits + "._-"
TRICKY = st.sampled_from([*"ab._-/\\ \x00\n\t\x7f:~*?\u00e9\u202e\u0430", "..", "//"])
SAFE_PART = st.text(SAFE_CHARS, min_size=1, max_size=12).filter(lambda p: p not in (".", ".."))
BAD_PART = st.sampled_from(["..", ".", "", "a\\b", "a\x00b", "a\nb", "caf\u00e9", "a b",
                            "\u0430", "a:b", "\x7f"])


def _accepted(path: str) -> bool:
    try:
        check_path(path, "t")
    except BadInput:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(TRICKY, max_size=12).map("".join)))
def test_accepted_paths_stay_inside_the_destination(path: str) -> None:
    if not _accepted(path):
        return
    joined = posixpath.join("/dest", path)
    assert posixpath.normpath(joined) == joined  # nothing to normalise away
    assert joined.startswith("/dest/") and path.isascii() and path.isprintable()
    assert all(part not in ("", ".", "..") for part in path.split("/"))
    assert set(path) <= set(SAFE_CHARS + "/")


@settings(max_examples=200, deadline=None)
@given(st.lists(SAFE_PART, min_size=1, max_size=6), BAD_PART, st.integers(min_value=0))
def test_one_bad_part_spoils_the_path(parts: list[str], bad: str, where: int) -> None:
    assert _accepted("/".join(parts)) == (len("/".join(parts)) <= rules.MAX_PATH_CHARS)
    spoiled = [*parts]
    spoiled.insert(where % (len(parts) + 1), bad)
    assert not _accepted("/".join(spoiled))
    assert not _accepted("/" + "/".join(parts))


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.lists(SAFE_PART, min_size=1, max_size=3).map("/".join),
                       st.binary(max_size=64), min_size=1, max_size=8))
def test_manifest_round_trips(files: dict[str, bytes]) -> None:
    from writroot.transfer import build_manifest

    folded = [p.casefold() for p in files]
    dirs = {"/".join(p.split("/")[:n]) for p in folded for n in range(1, p.count("/") + 1)}
    try:
        made, raw = build_manifest("files", files, "m")
    except BadInput:
        # Only the set rules may refuse: a case collision, a file used as a directory, the
        # reserved name.
        assert len(set(folded)) < len(folded) or dirs & set(folded) or \
            "manifest.json" in folded
        return
    assert parse_manifest(raw, "m") == made and made.to_bytes() == raw
    assert [f.path for f in made.files] == sorted(files)


# --- the CLI ------------------------------------------------------------------------------------


def _run(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=True)
    assert "Traceback" not in result.output
    return result


def test_cli_export_inspect_import(tmp_path: Path) -> None:
    src = make_src(tmp_path / "src")
    out = _run("bundle", "export", str(src), str(tmp_path / "b.tar"), "--kind", "key-request")
    assert out.exit_code == 0, out.output
    made = inspect_bundle(tmp_path / "b.tar")
    assert f"read aloud:  {made.words}" in out.output
    assert "exported 4 files" in out.output and "keys/CONUS-1.pem" in out.output

    shown = _run("bundle", "inspect", str(tmp_path / "b.tar"))
    assert shown.exit_code == 0 and made.words in shown.output and "all verified" in shown.output

    got = _run("bundle", "import", str(tmp_path / "b.tar"), str(tmp_path / "dest"), "--expect",
               made.words.lower(), "--json")
    assert got.exit_code == 0, got.output
    obj = json.loads(got.output)
    assert obj["manifest_sha256"] == made.sha256 and obj["words"] == made.words
    assert obj["expect_matched"] is True and obj["layout"] == "tar" and obj["action"] == "import"
    assert obj["dest"] == str(tmp_path / "dest") and obj["file_count"] == 4
    assert obj["files"][0] == {"path": "key-request.json", "size": len(FILES["key-request.json"]),
                               "sha256": hashlib.sha256(FILES["key-request.json"]).hexdigest()}
    assert tree(tmp_path / "dest") == {**FILES, MANIFEST_NAME: made.to_bytes()}


def test_cli_import_without_expect_warns(tmp_path: Path) -> None:
    export_bundle(make_src(tmp_path / "src"), tmp_path / "b", "key-request")
    got = _run("bundle", "import", str(tmp_path / "b"), str(tmp_path / "dest"))
    assert got.exit_code == 0 and "not compared" in got.output


def test_cli_refusals_raise_mapped_errors(tmp_path: Path) -> None:
    export_bundle(make_src(tmp_path / "src"), tmp_path / "b.tar", "key-request")
    got = _run("bundle", "import", str(tmp_path / "b.tar"), str(tmp_path / "dest"), "--expect",
               "aardvark")
    assert isinstance(got.exception, VerificationFailed)
    got = _run("bundle", "import", str(tmp_path / "b.tar"), str(tmp_path / "dest"), "--kind",
               "key-response")
    assert isinstance(got.exception, BadInput)
    assert not (tmp_path / "dest").exists()


def test_cli_exit_codes(tmp_path: Path) -> None:
    made = export_bundle(make_src(tmp_path / "src"), tmp_path / "b.tar", "key-request")
    proc = run_cli("bundle", "import", str(tmp_path / "b.tar"), str(tmp_path / "dest"),
                   "--expect", "aardvark adroitness")
    assert proc.returncode == 1, proc.stderr
    assert "b.tar: MANIFEST.json: the manifest does not match" in proc.stderr
    assert made.words in proc.stderr and not (tmp_path / "dest").exists()
    proc = run_cli("bundle", "export", str(tmp_path / "src"), str(tmp_path / "b.tar"), "--json")
    assert proc.returncode == 2 and "b.tar: output exists already" in proc.stderr
    proc = run_cli("bundle", "inspect", str(tmp_path / "b.tar"), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["manifest_sha256"] == made.sha256


def test_cli_bundle_help_imports_nothing_heavy() -> None:
    heavy = {"pkcs11", "pqcrypto", "slhdsa", "cryptography", "rich", "yaml", "rfc8785",
             "asn1crypto", "oqs"}
    code = ("import sys\nfrom writroot.cli import main\n"
            "for args in (['bundle', '--help'], ['bundle', 'import', '--help']):\n"
            "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    loaded = set(proc.stdout.strip().splitlines()[-1].split())
    assert not loaded & heavy, loaded & heavy
    assert "--expect" in proc.stdout
