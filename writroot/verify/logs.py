"""The federation's logs as files (DESIGN §6a): which log each issuer keeps, and the logs a
published set holds.

One log per issuing role, continuing across that role's key rotations:
    writroot/<fleet>/fleet              the fleet root's
    writroot/<fleet>/region/<REGION>    a regional root's
A ceremony publishes `logs/<origin>/checkpoint` and the tiles its appends added under
`logs/<origin>/tile/`; a published set is the union of such directories, anywhere below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from writroot.crypto.keys import PublicKey
from writroot.errors import BadInput, PolicyRefused, VerificationFailed
from writroot.log import checkpoint as cpmod
from writroot.log import cosignature, note, tiles, tree
from writroot.log.checkpoint import Checkpoint
from writroot.log.logfile import CHECKPOINT_FILE, Log

LOGS_DIR = "logs"
PROOFS_DIR = "proofs"
MAX_CHECKPOINT_FILES = 4096


def fleet_origin(fleet: str) -> str:
    return f"writroot/{fleet}/fleet"


def region_origin(fleet: str, region: str) -> str:
    return f"writroot/{fleet}/region/{region}"


class UnionTileReader:
    """Tiles from several copies of one log's directory (tiles never change once written, so
    the first copy found is as good as any; each is checked against a signed root on use)."""

    def __init__(self, dirs: Sequence[Path]) -> None:
        self.dirs = list(dirs)

    def read_tile(self, tile: tiles.Tile) -> bytes:
        for d in self.dirs:
            path = d / tile.path
            if path.is_file() and not path.is_symlink():
                return tiles.DirectoryTileReader(d).read_tile(tile)
        raise BadInput(f"no copy of tile {tile.path} in the published set",
                       str(self.dirs[0]) if self.dirs else "logs/")


def checkpoint_files(root: Path) -> list[Path]:
    """Every `logs/<origin>/checkpoint` below `root`, in a stable order."""
    found = sorted(p for p in root.rglob(CHECKPOINT_FILE)
                   if p.is_file() and not p.is_symlink() and LOGS_DIR in p.parts[:-1])
    if len(found) > MAX_CHECKPOINT_FILES:
        raise BadInput(f"more than {MAX_CHECKPOINT_FILES} checkpoint files", str(root))
    return found


def origin_dir(path: Path) -> str | None:
    """The origin a `.../logs/<origin>/checkpoint` path names (None: not under logs/)."""
    parts = path.parts[:-1]
    if LOGS_DIR not in parts:
        return None
    at = len(parts) - 1 - parts[::-1].index(LOGS_DIR)
    return "/".join(parts[at + 1:]) or None


@dataclass(frozen=True)
class Published:
    """One log as a published set holds it: its entries (checked against its largest
    validly signed checkpoint) and that checkpoint."""

    origin: str
    log: Log
    signed: bytes  # b"" for a log with no checkpoint yet

    @property
    def head(self) -> tuple[int, bytes]:
        return self.log.size, self.log.hashes.root()


def read_published(root: Path | None, origin: str, key: PublicKey) -> Published:
    """The log of `origin` in the published set under `root`: the largest checkpoint signed
    by `key`; every other checkpoint of that origin must be consistent with it (a fork in
    the published set is refused, exit 1). No checkpoint at all: the empty log."""
    if root is None:
        return Published(origin, Log(origin), b"")
    heads: list[tuple[Checkpoint, bytes, Path]] = []
    verifier = cosignature.CosignatureVerifier(origin, key)
    for path in checkpoint_files(root):
        if origin_dir(path.relative_to(root)) != origin:
            continue
        from writroot.jsonio import read_capped

        data = read_capped(path, note.MAX_NOTE_BYTES)
        try:
            text, _ = note.split(data, str(path))
            cp = cpmod.parse(text, str(path))
            note.open_note(data, [verifier], str(path))
        except (BadInput, VerificationFailed):  # not a head of this log under its key
            continue
        if cp.origin == origin:
            heads.append((cp, data, path.parent))
    if not heads:
        return Published(origin, Log(origin), b"")
    top_cp, top_signed, _ = max(heads, key=lambda h: (h[0].size, h[1]))
    reader = UnionTileReader([d for _cp, _s, d in heads])
    hashes = tiles.TileHashReader(top_cp.size, top_cp.root, reader)
    for cp, _signed, path in heads:
        if cp.size == top_cp.size and cp.root == top_cp.root:
            continue
        ok = cp.size < top_cp.size and tree.check_consistency(
            tree.consistency_proof(hashes, cp.size, top_cp.size), cp.size, top_cp.size,
            cp.root, top_cp.root)
        if not ok:
            raise PolicyRefused(f"the published set holds two checkpoints of {origin} that "
                                f"cannot both be true (sizes {cp.size} and {top_cp.size}): "
                                "the log is forked; resolve it before any ceremony extends "
                                "it [conflict-log]", str(path / CHECKPOINT_FILE))
    log = Log(origin)
    for index in range((top_cp.size + tiles.WIDTH - 1) // tiles.WIDTH):
        width = tiles.tile_width(top_cp.size, 0, index)
        tile = tiles.Tile(tiles.DATA, index, width)
        for entry in tiles.parse_entry_bundle(reader.read_tile(tile), width, tile.path):
            log.append(entry)
    if log.hashes.root() != top_cp.root:
        raise tiles.TileMismatch(f"the entries of {origin} do not hash to its checkpoint",
                                 "tile/entries")
    return Published(origin, log, top_signed)
