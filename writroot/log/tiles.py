"""C2SP tlog-tiles: tile paths, a TileReader, a hash reader that checks every tile against a
signed tree root before using it, and a log written as static files.

Level L tiles hold up to 256 hashes of tree level 8L; `tile/entries/N` holds the entries
(big-endian uint16 length, then the entry; writroot's entries are 32-byte hashes).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from writroot.errors import BadInput
from writroot.log import tree
from writroot.log.tree import HASH_SIZE

HEIGHT = 8
WIDTH = 1 << HEIGHT
ENTRY_SIZE = 32
MAX_LEVEL = 63
DATA = -1  # the level of an entry bundle (as x/mod's data tiles)

_PATH_RE = re.compile(r"tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/)*[0-9]{3})"
                      r"(?:\.p/([1-9][0-9]{0,2}))?")


@dataclass(frozen=True, slots=True)
class Tile:
    level: int  # DATA for an entry bundle
    index: int
    width: int  # 1..256; under 256 is a partial tile

    @property
    def path(self) -> str:
        return tile_path(self.level, self.index, self.width)


def encode_index(n: int) -> str:
    """1234067 -> x001/x234/067 (C2SP: zero-padded 3-digit elements, all but the last x)."""
    if n < 0:
        raise ValueError("a tile index is not negative")
    parts = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        parts.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(parts))


def tile_path(level: int, index: int, width: int = WIDTH) -> str:
    if not 1 <= width <= WIDTH or not DATA <= level <= MAX_LEVEL:
        raise ValueError(f"no tile of level {level} and width {width}")
    name = "entries" if level == DATA else str(level)
    suffix = "" if width == WIDTH else f".p/{width}"
    return f"tile/{name}/{encode_index(index)}{suffix}"


def parse_tile_path(path: str) -> Tile:
    """The strict inverse of tile_path (no leading zeroes beyond the 3-digit elements)."""
    m = _PATH_RE.fullmatch(path)
    if m is None:
        raise BadInput("not a C2SP tile path", path)
    level = DATA if m[1] == "entries" else int(m[1])
    if level > MAX_LEVEL:
        raise BadInput("tile level above 63", path)
    width = int(m[3]) if m[3] else WIDTH
    if width > WIDTH or (m[3] and width == WIDTH):
        raise BadInput("partial tile width must be 1 to 255", path)
    elements = m[2].split("/")
    if len(elements) > 1 and elements[0] == "x000":
        raise BadInput("tile index has a leading zero element", path)
    index = int("".join(e.lstrip("x") for e in elements))
    return Tile(level, index, width)


def tile_width(size: int, level: int, index: int) -> int:
    """How many hashes tile (level, index) has in a tree of `size` (0: it does not exist)."""
    at_level = size >> (HEIGHT * max(level, 0))
    return max(0, min(WIDTH, at_level - index * WIDTH))


def tiles_for_size(size: int) -> Iterator[Tile]:
    """Every hash tile (full and partial) a tree of `size` is served as, bottom level first."""
    level = 0
    while size >> (HEIGHT * level):
        at_level = size >> (HEIGHT * level)
        for index in range((at_level + WIDTH - 1) // WIDTH):
            yield Tile(level, index, tile_width(size, level, index))
        level += 1


def new_tiles(old: int, new: int) -> Iterator[Tile]:
    """The tiles (hash tiles and entry bundles) a log growing from `old` to `new` adds."""
    for t in tiles_for_size(new):
        if t.width != tile_width(old, t.level, t.index):
            yield t
            if t.level == 0:
                yield Tile(DATA, t.index, t.width)


class TileReader(Protocol):
    def read_tile(self, tile: Tile) -> bytes:
        """The tile's bytes as stored; checking them is the caller's job."""
        ...


class DirectoryTileReader:
    """Tiles under a directory, each read with a cap of exactly its expected size."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read_tile(self, tile: Tile) -> bytes:
        from writroot.jsonio import read_capped

        cap = tile.width * (ENTRY_SIZE + 2 if tile.level == DATA else HASH_SIZE)
        path = self.root / tile.path
        data = read_capped(path, cap)
        if tile.level != DATA and len(data) != cap:
            raise BadInput(f"tile is {len(data)} bytes, not {cap}", str(path))
        return data


def subtree_root(hashes: bytes) -> bytes:
    """The root of a power-of-two run of concatenated hashes (a complete subtree)."""
    level = [hashes[i:i + HASH_SIZE] for i in range(0, len(hashes), HASH_SIZE)]
    while len(level) > 1:
        level = [tree.node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def _fold_right(hashes: bytes) -> list[bytes]:
    """A tile's hashes as the complete subtrees of RFC 9162's split: biggest first."""
    out, start, count = [], 0, len(hashes) // HASH_SIZE
    while count:
        k = 1 << (count.bit_length() - 1)
        out.append(subtree_root(hashes[start * HASH_SIZE:(start + k) * HASH_SIZE]))
        start, count = start + k, count - k
    return out


class TileMismatch(BadInput):
    """Tiles that do not hash to the signed root (exit 1: they are not the log signed)."""

    exit_code = 1


class TileHashReader:
    """tree.HashReader over tiles: a tile is used only once it is known to hash up to `root`.

    The right edge (every partial tile) is checked against the root at once; a full tile
    against its entry in the tile above, itself checked first (x/mod's TileHashReader).
    """

    def __init__(self, size: int, root: bytes, reader: TileReader) -> None:
        self.size = size
        self.root = root
        self.reader = reader
        self.checked: dict[tuple[int, int], bytes] = {}
        self._edge_checked = False

    def _read(self, level: int, index: int) -> bytes:
        width = tile_width(self.size, level, index)
        if width == 0:
            raise IndexError(f"tile {level}/{index} is beyond the tree of size {self.size}")
        data = self.reader.read_tile(Tile(level, index, width))
        if len(data) != width * HASH_SIZE:
            raise TileMismatch(f"tile is {len(data)} bytes, not {width * HASH_SIZE}",
                               tile_path(level, index, width))
        return data

    def _check_edge(self) -> None:
        """Read every partial tile and check that together they make the signed root."""
        if self._edge_checked:
            return
        edge: dict[tuple[int, int], bytes] = {}
        level = 0
        while self.size >> (HEIGHT * level):
            index = (self.size >> (HEIGHT * level)) // WIDTH
            if tile_width(self.size, level, index):
                edge[(level, index)] = self._read(level, index)
            level += 1
        parts: list[bytes] = []  # the complete subtrees of the tree, left to right
        for key in sorted(edge, reverse=True):
            parts.extend(_fold_right(edge[key]))
        root = tree.EMPTY_ROOT
        if parts:
            root = parts[-1]
            for h in reversed(parts[:-1]):
                root = tree.node_hash(h, root)
        if root != self.root:
            raise TileMismatch("the log's tiles do not hash to the checkpoint's root hash",
                               "tile/")
        self.checked.update(edge)
        self._edge_checked = True

    def tile(self, level: int, index: int) -> bytes:
        """A checked tile's hashes."""
        key = (level, index)
        if key in self.checked:
            return self.checked[key]
        self._check_edge()
        if key in self.checked:
            return self.checked[key]
        data = self._read(level, index)  # full: its hash is an entry of the tile above
        above = self.tile(level + 1, index // WIDTH)
        at = (index % WIDTH) * HASH_SIZE
        if subtree_root(data) != above[at:at + HASH_SIZE]:
            raise TileMismatch("tile does not hash to its entry in the tile above",
                               tile_path(level, index))
        self.checked[key] = data
        return data

    def subtree(self, level: int, index: int) -> bytes:
        tile_level, rest = divmod(level, HEIGHT)
        per = 1 << rest  # hashes of this tile level under one subtree
        first = index * per
        data = self.tile(tile_level, first // WIDTH)
        at = (first % WIDTH) * HASH_SIZE
        run = data[at:at + per * HASH_SIZE]
        if len(run) != per * HASH_SIZE:
            raise IndexError(f"no complete subtree at level {level}, index {index}")
        return subtree_root(run)


def entry_bundle(entries: Sequence[bytes]) -> bytes:
    return b"".join(len(e).to_bytes(2, "big") + e for e in entries)


def parse_entry_bundle(data: bytes, width: int, where: str) -> list[bytes]:
    """A bundle of exactly `width` 32-byte entries (writroot logs hold only hashes)."""
    out: list[bytes] = []
    at = 0
    while at < len(data):
        if len(data) - at < 2 or int.from_bytes(data[at:at + 2], "big") != ENTRY_SIZE:
            raise BadInput("entry bundle entries must be 32 bytes", where)
        out.append(data[at + 2:at + 2 + ENTRY_SIZE])
        at += 2 + ENTRY_SIZE
    if at != len(data) or len(out) != width:
        raise BadInput(f"entry bundle must hold {width} entries", where)
    return out


def tile_files(hashes: tree.MemoryTree, entries: Sequence[bytes], old: int,
               new: int) -> dict[str, bytes]:
    """The static files (path -> bytes) a log growing from `old` to `new` entries adds."""
    out: dict[str, bytes] = {}
    for t in new_tiles(old, new):
        if t.level == DATA:
            first = t.index * WIDTH
            out[t.path] = entry_bundle(entries[first:first + t.width])
        else:
            level = hashes.levels[HEIGHT * t.level]
            first = t.index * WIDTH * HASH_SIZE
            out[t.path] = bytes(level[first:first + t.width * HASH_SIZE])
    return out
