"""The I/O shell around the pure core: gather artifacts from paths, resolve the anchor."""

from __future__ import annotations

from pathlib import Path

from writroot.crypto.fingerprint import normalise
from writroot.crypto.keys import PublicKey
from writroot.errors import BadInput
from writroot.jsonio import is_hex_digest, read_capped
from writroot.verify.core import Anchor

ENVELOPE_SUFFIX = ".dsse.json"
MAX_ARTIFACT_BYTES = 4 * 1024 * 1024
MAX_ARTIFACTS = 10_000
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
    out: list[tuple[str, bytes]] = []
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
            out.append((str(f), read_capped(f, MAX_ARTIFACT_BYTES)))
            if len(out) > MAX_ARTIFACTS:
                raise BadInput(f"more than {MAX_ARTIFACTS} artifacts", text)
    return out
