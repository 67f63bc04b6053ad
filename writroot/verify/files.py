"""The I/O shell around the pure core: gather artifacts from paths, resolve the anchor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from writroot.crypto.fingerprint import normalise
from writroot.crypto.keys import PublicKey
from writroot.errors import BadInput
from writroot.jsonio import is_hex_digest, read_capped
from writroot.verify.core import Anchor, Source

ENVELOPE_SUFFIX = ".dsse.json"
MAX_ARTIFACT_BYTES = 4 * 1024 * 1024
MAX_ARTIFACTS = 100_000
SUBJECT_FILE_BYTES = 256 * 1024 * 1024  # release files, read whole to be digested


def resolve_anchor(text: str) -> Anchor:
    """A PEM file path, or a fingerprint (64 hex digits; spaces and colons allowed)."""
    path = Path(text)
    if path.is_file():
        data = read_capped(path, 64 * 1024)
        key = PublicKey.from_pem(data, str(path))
        return Anchor(key.keyid, key)
    keyid = normalise(text)
    if not is_hex_digest(keyid):
        raise BadInput("expected a 64-hex-digit fingerprint or a PEM file", "--anchor")
    return Anchor(keyid)


def gather(paths: list[str]) -> list[tuple[str, bytes]]:
    """Files are taken as envelopes; directories contribute their `*.dsse.json` files."""
    return [(str(f), read_capped(f, MAX_ARTIFACT_BYTES)) for f in gather_paths(paths)]


def sources(paths: list[str], jobs: int, anchor: Anchor) -> tuple[list[Source],
                                                                  dict[tuple[str, str], bool]]:
    """The artifacts as sources read one at a time, and every signature's result computed
    on `jobs` processes beforehand (writroot.verify.bulk)."""
    import hashlib

    from writroot.verify.bulk import precompute

    files = gather_paths(paths)
    digests, signatures = precompute(files, anchor.key, jobs)

    def loader(f: Path) -> Callable[[], bytes]:
        return lambda: read_capped(f, MAX_ARTIFACT_BYTES)

    out = []
    for f in files:
        digest = digests.get(str(f))
        if digest is None:  # unreadable in the pool: read here, for the one-line error
            digest = hashlib.sha256(read_capped(f, MAX_ARTIFACT_BYTES)).hexdigest()
        out.append(Source(str(f), digest, loader(f)))
    return out, signatures


def gather_paths(paths: list[str]) -> list[Path]:
    """The envelope files named: files as given, directories' `*.dsse.json` files."""
    out: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            files = sorted(p for p in path.rglob(f"*{ENVELOPE_SUFFIX}")
                           if p.is_file() and not p.is_symlink())
            if not files:
                raise BadInput(f"no *{ENVELOPE_SUFFIX} files", str(path))
        elif path.exists():
            files = [path]
        else:
            raise BadInput("no such file or directory", str(path))
        for f in files:
            out.append(f)
            if len(out) > MAX_ARTIFACTS:
                raise BadInput(f"more than {MAX_ARTIFACTS} artifacts", text)
    return out
