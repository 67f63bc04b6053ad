"""RFC 9162 (RFC 6962) Merkle trees: hashes, proofs and their checks, all pure.

Storage is a `HashReader` (the hash of the complete subtree of 2**level leaves at `index`),
as golang.org/x/mod/sumdb/tlog takes it, so the same proof code runs on a `MemoryTree` and on
tiles checked against a signed root (tiles.TileHashReader). Proof checks return a bool: a
proof that does not hold is a verdict, never an exception.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
#: Tree sizes and indexes are uint64 in C2SP; 2**63 - 1 keeps them Go int64 as well.
MAX_SIZE = 2**63 - 1


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class HashReader(Protocol):
    def subtree(self, level: int, index: int) -> bytes:
        """The root of leaves [index * 2**level, (index + 1) * 2**level): a complete subtree."""
        ...


class MemoryTree:
    """An append-only tree in memory: every complete subtree hash, level by level."""

    def __init__(self) -> None:
        self.levels: list[bytearray] = [bytearray()]

    @property
    def size(self) -> int:
        return len(self.levels[0]) // HASH_SIZE

    def append(self, leaf: bytes) -> int:
        """Append a leaf hash (not an entry); return its index."""
        if len(leaf) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        index = self.size
        self.levels[0] += leaf
        level, n = 0, index + 1
        while n % 2 == 0:  # a complete pair: its parent is complete too
            below = self.levels[level]
            if level + 1 == len(self.levels):
                self.levels.append(bytearray())
            self.levels[level + 1] += node_hash(bytes(below[-64:-32]), bytes(below[-32:]))
            level, n = level + 1, n // 2
        return index

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def subtree(self, level: int, index: int) -> bytes:
        start = index * HASH_SIZE
        if level >= len(self.levels) or start + HASH_SIZE > len(self.levels[level]):
            raise IndexError(f"no complete subtree at level {level}, index {index}")
        return bytes(self.levels[level][start:start + HASH_SIZE])

    def root(self, size: int | None = None) -> bytes:
        return tree_root(self, self.size if size is None else size)


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(reader: HashReader, lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) where lo is aligned to the largest power of two that fits (RFC 9162)."""
    n = hi - lo
    if n & (n - 1) == 0:
        level = n.bit_length() - 1
        return reader.subtree(level, lo >> level)
    k = _split(n)
    return node_hash(_mth(reader, lo, lo + k), _mth(reader, lo + k, hi))


def tree_root(reader: HashReader, size: int) -> bytes:
    if size == 0:
        return EMPTY_ROOT
    return _mth(reader, 0, size)


def inclusion_proof(reader: HashReader, size: int, index: int) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(index, D[0:size]): from the leaf's sibling up."""
    if not 0 <= index < size:
        raise IndexError(f"index {index} is not in a tree of size {size}")
    out: list[bytes] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            out.append(_mth(reader, lo + k, hi))
            hi = lo + k
        else:
            out.append(_mth(reader, lo, lo + k))
            lo, m = lo + k, m - k
    out.reverse()
    return out


def consistency_proof(reader: HashReader, old: int, new: int) -> list[bytes]:
    """RFC 9162 2.1.4.1 PROOF(old, D[0:new])."""
    if not 0 <= old <= new:
        raise IndexError(f"no consistency proof from size {old} to {new}")
    if old == 0 or old == new:
        return []
    out: list[bytes] = []
    lo, hi, m, whole = 0, new, old, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            out.append(_mth(reader, lo + k, hi))
            hi = lo + k
        else:
            out.append(_mth(reader, lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        out.append(_mth(reader, lo, hi))
    out.reverse()
    return out


def _is_hashes(proof: Sequence[bytes]) -> bool:
    return len(proof) <= 64 and all(isinstance(p, bytes) and len(p) == HASH_SIZE for p in proof)


def root_from_inclusion(proof: Sequence[bytes], size: int, index: int,
                        leaf: bytes) -> bytes | None:
    """RFC 9162 2.1.3.2: the root a proof leads to, or None for a proof of the wrong shape."""
    if not 0 <= index < size <= MAX_SIZE or not _is_hashes(proof) or len(leaf) != HASH_SIZE:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def check_inclusion(proof: Sequence[bytes], size: int, index: int, leaf: bytes,
                    root: bytes) -> bool:
    return root_from_inclusion(proof, size, index, leaf) == root


def check_consistency(proof: Sequence[bytes], old: int, new: int, old_root: bytes,
                      new_root: bytes) -> bool:
    """RFC 9162 2.1.4.2."""
    if not 0 <= old <= new <= MAX_SIZE or not _is_hashes(proof):
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof  # the empty tree is a prefix of every tree
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root
