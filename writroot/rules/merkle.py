"""The plan digest as a Merkle root, and inclusion proofs of one operation into it.

A locked plan of version 2 is approved by its Merkle root (docs/format.md §5.10a):

    LEAF(kind, value) = SHA-256(0x00 || RFC8785({kind: value}))
    NODE(left, right) = SHA-256(0x01 || left || right)
    OPS  = MTH(LEAF("operation", {"count": n, "index": i, "operation": op_i}) for i < n)
                                                           (RFC 9162 §2.1.1)
    ROOT = NODE(NODE(LEAF("header", header), LEAF("roster", roster)),
                NODE(LEAF("source", source), OPS))

An artifact carries its own operation, the header, the roster and source leaf hashes and
the operation's audit path: enough to recompute ROOT, not the whole plan. A version 1 plan's
digest is the SHA-256 of its RFC 8785 form. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from typing import Any

from writroot.jsonio import canonical

#: The locked-plan version whose digest is the Merkle root (1: the flat SHA-256).
MERKLE_VERSION = 2
#: The members of the locked plan that are not in the header leaf.
NOT_HEADER = ("operations", "source")


def leaf(kind: str, value: Any) -> bytes:
    return hashlib.sha256(b"\x00" + canonical({kind: value})).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def header_of(document: dict[str, Any]) -> dict[str, Any]:
    """The plan without its operations and source, and its roster pin without the roster."""
    out = {k: v for k, v in document.items() if k not in NOT_HEADER}
    roster = out.get("roster")
    if isinstance(roster, dict):
        out["roster"] = {k: v for k, v in roster.items() if k != "roster"}
    return out


def roster_of(document: dict[str, Any]) -> Any:
    roster = document.get("roster")
    return roster.get("roster") if isinstance(roster, dict) else None


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162's Merkle Tree Hash over leaf hashes (the empty tree: SHA-256 of nothing)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node(mth(leaves[:k]), mth(leaves[k:]))


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def audit_path(leaves: list[bytes], index: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1: the siblings from the leaf up to the root."""
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*audit_path(leaves[:k], index), mth(leaves[k:])]
    return [*audit_path(leaves[k:], index - k), mth(leaves[:k])]


def root_from_path(leaf_hash: bytes, index: int, size: int, path: list[bytes]) -> bytes | None:
    """RFC 9162 §2.1.3.2: the tree's root from one leaf and its audit path, or None when the
    path cannot belong to leaf `index` of a tree of `size` leaves."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def operation_leaf(op: Any, index: int, count: int) -> bytes:
    """An operation's leaf names its place: RFC 9162 paths alone do not bind the index
    (index 2 of 3 leaves and index 1 of 2 have the same path), and the index is the serial."""
    return leaf("operation", {"count": count, "index": index, "operation": op})


def operation_leaves(document: dict[str, Any]) -> list[bytes]:
    ops = document["operations"]
    return [operation_leaf(op, i, len(ops)) for i, op in enumerate(ops)]


def plan_root(document: dict[str, Any]) -> str:
    ops = mth(operation_leaves(document))
    return _root(leaf("header", header_of(document)), leaf("roster", roster_of(document)),
                 leaf("source", document.get("source")), ops).hex()


def _root(header: bytes, roster: bytes, source: bytes, ops: bytes) -> bytes:
    return node(node(header, roster), node(source, ops))


def plan_digest(document: Any) -> str:
    """What custodians approve: the Merkle root of a version 2 plan, the SHA-256 of the RFC
    8785 form of any other value (version 1 plans)."""
    if isinstance(document, dict) and document.get("plan") == MERKLE_VERSION \
            and isinstance(document.get("operations"), list):
        return plan_root(document)
    return hashlib.sha256(canonical(document)).hexdigest()


def inclusion(document: dict[str, Any], index: int) -> dict[str, Any]:
    """The proof an artifact of operation `index` carries (`ceremony.inclusion`)."""
    leaves = operation_leaves(document)
    return {"header": header_of(document), "operation": document["operations"][index],
            "index": index, "operations": len(leaves),
            "roster": leaf("roster", roster_of(document)).hex(),
            "source": leaf("source", document.get("source")).hex(),
            "path": [h.hex() for h in audit_path(leaves, index)]}


INCLUSION_FIELDS = {"header", "operation", "index", "operations", "roster", "source", "path"}


def inclusion_root(proof: Any) -> str | None:
    """The root an inclusion proof leads to, or None when it is malformed."""
    try:
        if not isinstance(proof, dict) or set(proof) != INCLUSION_FIELDS \
                or not isinstance(proof["header"], dict) \
                or not isinstance(proof["operation"], dict):
            return None
        index, size, path = proof["index"], proof["operations"], proof["path"]
        if type(index) is not int or type(size) is not int or not isinstance(path, list) \
                or len(path) > 64:
            return None
        hashes = [_hash(h) for h in [proof["roster"], proof["source"], *path]]
        ops = root_from_path(operation_leaf(proof["operation"], index, size), index, size,
                             hashes[2:])
        if ops is None:
            return None
        return _root(leaf("header", proof["header"]), hashes[0], hashes[1], ops).hex()
    except (ValueError, TypeError):
        return None


def _hash(value: Any) -> bytes:
    if not isinstance(value, str) or len(value) != 64 or value != value.lower():
        raise ValueError("not a lowercase hex SHA-256")
    return bytes.fromhex(value)
