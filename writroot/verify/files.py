"""The I/O shell around the pure core: gather artifacts from paths, resolve the anchor."""

from __future__ import annotations

from pathlib import Path

from writroot.crypto.fingerprint import normalise
from writroot.crypto.keys import PublicKey
from writroot.errors import BadInput
from writroot.jsonio import is_hex_digest, read_capped
from writroot.verify.core import Anchor, Parsed

ENVELOPE_SUFFIX = ".dsse.json"
MAX_ARTIFACT_BYTES = 4 * 1024 * 1024
MAX_ARTIFACTS = 100_000
SUBJECT_FILE_BYTES = 256 * 1024 * 1024  # release files, read whole to be digested


def resolve_anchor(text: str) -> Anchor:
    """A fingerprint (64 hex digits, spaces and colons allowed, or its 32 PGP words) or a PEM
    file path."""
    from writroot.crypto.fingerprint import words_problem

    keyid = normalise(text)
    if is_hex_digest(keyid):
        return Anchor(keyid)
    problem = words_problem(text)
    if problem is not None:
        raise BadInput(f"not a fingerprint in PGP words: {problem}", "--anchor")
    path = Path(text)
    try:
        is_file = path.is_file()
    except OSError:  # a name too long to be a path, say
        raise BadInput("neither a fingerprint (64 hex digits, or its 32 PGP words) nor a PEM "
                       "file", "--anchor") from None
    if is_file:
        data = read_capped(path, 64 * 1024)
        key = PublicKey.from_pem(data, str(path))
        return Anchor(key.keyid, key)
    raise BadInput("expected a fingerprint (64 hex digits, or its 32 PGP words) or a PEM file",
                   "--anchor")


def gather(paths: list[str]) -> list[tuple[str, bytes]]:
    """Files are taken as envelopes; directories contribute their `*.dsse.json` files."""
    return [(str(f), read_capped(f, MAX_ARTIFACT_BYTES)) for f in gather_paths(paths)]


def parsed(paths: list[str], jobs: int, anchor: Anchor) -> tuple[list[Parsed],
                                                                 dict[tuple[str, str], bool]]:
    """The artifacts read once and parsed, and every signature's result, on `jobs`
    processes (writroot.verify.bulk)."""
    from writroot.verify.bulk import parse_all

    files = gather_paths(paths)
    found, signatures = parse_all(files, anchor.key, jobs)
    out = []
    for f, one in zip(files, found, strict=True):
        if one is None:  # unreadable in the pool: read here, for the one-line error
            read_capped(f, MAX_ARTIFACT_BYTES)
            raise BadInput("could not be read", str(f))
        out.append(one)
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
