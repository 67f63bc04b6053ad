"""MANIFEST.json: every file's path, size and SHA-256, in RFC 8785 canonical JSON.

Canonical form is required on read, so one file set has exactly one manifest and therefore one
digest to read aloud.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from writroot.crypto.fingerprint import hex_groups, pgp_words
from writroot.errors import BadInput, VerificationFailed
from writroot.jsonio import canonical, is_hex_digest, loads_strict
from writroot.transfer import rules

_FIELDS = ("bundle", "kind", "files")
_FILE_FIELDS = ("path", "size", "sha256")
#: The read-aloud digest: this many leading bytes as PGP words, the next as hex groups.
WORD_BYTES = 8
HEX_BYTES = 8


@dataclass(frozen=True)
class ManifestFile:
    path: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class Manifest:
    kind: str
    files: list[ManifestFile]
    sha256: str
    words: str

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def document(self) -> dict[str, Any]:
        return {"bundle": rules.FORMAT_VERSION, "kind": self.kind,
                "files": [f.to_json() for f in self.files]}

    def to_bytes(self) -> bytes:
        """The exact MANIFEST.json bytes (canonical, so equal to what was read or written)."""
        return canonical(self.document())

    def to_json(self) -> dict[str, Any]:
        return {**self.document(), "manifest_sha256": self.sha256, "words": self.words,
                "file_count": len(self.files), "total_size": self.total_size}


def human_digest(sha256_hex: str) -> str:
    """128 bits of the manifest digest for people: 8 PGP words, then 4 groups of hex."""
    digest = bytes.fromhex(sha256_hex)
    hex_part = digest[WORD_BYTES:WORD_BYTES + HEX_BYTES].hex()
    return f"{pgp_words(digest[:WORD_BYTES])} {hex_groups(hex_part)}"


def _compact(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def check_expect(manifest: Manifest, expect: str, where: str) -> None:
    """`expect` is the full manifest SHA-256 or the read-aloud words; case and spacing are free."""
    typed = _compact(expect)
    if not typed:
        raise BadInput("the expected digest is empty", where)
    if typed not in (manifest.sha256, _compact(manifest.words)):
        raise VerificationFailed(
            f"the manifest does not match the expected digest {expect.strip()!r}: this bundle "
            f"reads aloud as {manifest.words!r} (SHA-256 {manifest.sha256}); do not use it "
            "until you know why", where)


def build_manifest(kind: str, files: Mapping[str, bytes], where: str) -> tuple[Manifest, bytes]:
    """The manifest of `files`, checked by the same parser a reader uses."""
    entries = [{"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
               for path, data in sorted(files.items())]
    raw = canonical({"bundle": rules.FORMAT_VERSION, "kind": kind, "files": entries})
    return parse_manifest(raw, where), raw


def _exact_fields(obj: object, fields: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise BadInput("expected a JSON object", where)
    for key in obj:
        if key not in fields:
            raise BadInput(f"unknown field {key!r}", f"{where}.{key}")
    for key in fields:
        if key not in obj:
            raise BadInput("missing field", f"{where}.{key}")
    return obj


def _file(obj: object, where: str) -> ManifestFile:
    entry = _exact_fields(obj, _FILE_FIELDS, where)
    path = rules.check_path(entry["path"], f"{where}.path")
    if path.casefold() == rules.MANIFEST_NAME.casefold():
        raise BadInput(f"{rules.MANIFEST_NAME} is the manifest's own name and cannot be listed",
                       f"{where}.path")
    size = entry["size"]
    if type(size) is not int or not 0 <= size <= rules.MAX_FILE_BYTES:
        raise BadInput(f"size must be an integer from 0 to {rules.MAX_FILE_BYTES}",
                       f"{where}.size")
    if not is_hex_digest(entry["sha256"]):
        raise BadInput("sha256 must be 64 lowercase hex digits", f"{where}.sha256")
    return ManifestFile(path, size, entry["sha256"])


def _check_set(files: list[ManifestFile], where: str) -> None:
    """Duplicates, names that collide ignoring case, a name used as file and directory, order."""
    seen: dict[str, str] = {}
    dirs: dict[str, str] = {}
    for i, f in enumerate(files):
        at = f"{where}.files[{i}].path"
        folded = f.path.casefold()
        if folded in seen:
            same = "duplicate path" if seen[folded] == f.path else \
                f"collides with {seen[folded]!r} on case-insensitive file systems"
            raise BadInput(f"{f.path}: {same}", at)
        seen[folded] = f.path
        parts = folded.split("/")
        for n in range(1, len(parts)):
            dirs.setdefault("/".join(parts[:n]), f.path)
    for i, f in enumerate(files):
        if f.path.casefold() in dirs:
            raise BadInput(f"{f.path} is a file, but {dirs[f.path.casefold()]!r} needs it to be "
                           "a directory", f"{where}.files[{i}].path")
    for i in range(1, len(files)):
        if files[i - 1].path > files[i].path:
            raise BadInput("files must be sorted by path", f"{where}.files[{i}].path")
    # The same budget a reader walking the unpacked directory has: files, directories, manifest.
    if len(files) + len(dirs) + 1 > rules.MAX_ENTRIES:
        raise BadInput(f"{len(files)} files in {len(dirs)} directories make more than "
                       f"{rules.MAX_ENTRIES} entries with the manifest", f"{where}.files")


def parse_manifest(raw: bytes, where: str) -> Manifest:
    """Strictly parse MANIFEST.json bytes; `where` names the manifest file for every error."""
    doc = _exact_fields(loads_strict(raw, where, rules.MAX_MANIFEST_BYTES), _FIELDS, where)
    if type(doc["bundle"]) is not int or doc["bundle"] != rules.FORMAT_VERSION:
        raise BadInput(f"unsupported bundle format {doc['bundle']!r} (this reader knows "
                       f"{rules.FORMAT_VERSION})", f"{where}.bundle")
    kind = rules.check_kind(doc["kind"], f"{where}.kind")
    listed = doc["files"]
    if not isinstance(listed, list):
        raise BadInput("expected a list", f"{where}.files")
    if not listed:
        raise BadInput("a bundle carries at least one file", f"{where}.files")
    if len(listed) > rules.MAX_FILES:
        raise BadInput(f"{len(listed)} files, more than the {rules.MAX_FILES}-file cap",
                       f"{where}.files")
    files = [_file(entry, f"{where}.files[{i}]") for i, entry in enumerate(listed)]
    _check_set(files, where)
    total = sum(f.size for f in files)
    if total > rules.MAX_TOTAL_BYTES:
        raise BadInput(f"files total {total} bytes, more than the {rules.MAX_TOTAL_BYTES}-byte "
                       "cap", f"{where}.files")
    try:
        again = canonical(doc)
    except BadInput as exc:
        raise BadInput(exc.message, where) from None
    if again != raw:
        raise BadInput("not in RFC 8785 canonical form (exactly one encoding is accepted, so the "
                       "digest read aloud is unambiguous)", where)
    sha = hashlib.sha256(raw).hexdigest()
    return Manifest(kind, files, sha, human_digest(sha))
