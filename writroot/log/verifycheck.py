"""What a verifier concludes from logs, pure: checkpoints, cosignatures, tlog-proofs and the
witness policy in, findings out (for the trust engine to call; no I/O, no clock).

Findings, each on a named input (a checkpoint file, a proof's checkpoint, a statement):
  log-signed     a checkpoint is signed by the log key for its origin
  log-witnessed  a checkpoint (or the one a statement is proven in) has the policy's quorum
                 of valid cosignatures; a statement waiting for its witnesses says so
  log-included   a statement is in its issuer's log (a proof whose `extra` names its entry)
  conflict-log   two checkpoints of one log that cannot both be true: on every party
  log-consistent tiles given for a log that are not the tree of its largest checkpoint
Every input is checked once (verdicts are cached by content), so a list in an input cannot
multiply the work; the output is sorted, so it does not depend on input order.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from writroot.crypto.keys import PublicKey
from writroot.errors import BadInput, WritrootError
from writroot.log import checkpoint as cpmod
from writroot.log import cosignature, note, proof, tiles, tree
from writroot.log.checkpoint import Checkpoint

#: An origin's log key, or every key it has had (a log continues when its key is replaced).
OriginKeys = PublicKey | tuple[PublicKey, ...]


@dataclass(frozen=True, slots=True)
class WitnessPolicy:
    witnesses: tuple[tuple[str, PublicKey], ...]
    quorum: int
    required: bool = True  # every statement must be in its issuer's log


@dataclass(frozen=True, slots=True)
class Statement:
    name: str
    entry: bytes  # SHA-256 of its canonical payload
    origin: str  # its issuer's log


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    subject: str
    check: str
    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class _Head:
    """A checkpoint's verdict: None for `cp` when it is not validly signed by its log."""

    cp: Checkpoint | None
    witnesses: frozenset[str] = field(default_factory=frozenset)
    problem: str = ""


def _b64(root: bytes) -> str:
    return base64.b64encode(root).decode()


class _Checker:
    def __init__(self, log_keys: Mapping[str, OriginKeys], policy: WitnessPolicy) -> None:
        self.log_keys = log_keys
        self.policy = policy
        self.witnesses = [cosignature.CosignatureVerifier(n, k) for n, k in policy.witnesses]
        self.cache: dict[bytes, _Head] = {}

    def head(self, signed: bytes, where: str) -> _Head:
        if signed not in self.cache:
            self.cache[signed] = self._head(signed, where)
        return self.cache[signed]

    def _head(self, signed: bytes, where: str) -> _Head:
        try:
            text, sigs = note.split(signed, where)
            cp = cpmod.parse(text, where)
        except BadInput as exc:
            return _Head(None, problem=f"malformed checkpoint: {exc.message}")
        keys = self.log_keys.get(cp.origin)
        if keys is None:
            return _Head(None, problem=f"no log key is known for origin {cp.origin!r}")
        logs = [cosignature.CosignatureVerifier(cp.origin, k)
                for k in (keys if isinstance(keys, tuple | list) else (keys,))]
        message = text.encode()
        try:
            signed_by_log = any(
                (s.name, s.key_id) == (log.name, log.key_id)
                and log.verify(message, s.signature) for log in logs for s in sigs)
            good = frozenset(
                w.name for w in self.witnesses for s in sigs
                if (s.name, s.key_id) == (w.name, w.key_id) and w.verify(message, s.signature))
        except WritrootError as exc:
            return _Head(None, problem=f"checking its signatures failed: {exc}")
        if not signed_by_log:
            return _Head(None, problem=f"not signed by the log key for {cp.origin!r}")
        return _Head(cp, good)


def _quorum_message(have: int, quorum: int) -> str:
    return (f"{have} of the {quorum} cosignatures the witness policy requires"
            + ("" if have >= quorum else ": waiting for its witnesses"))


def _names(names: list[str]) -> str:
    """At most three names, so a finding's text does not grow with the inputs."""
    shown = ", ".join(sorted(names)[:3])
    return shown if len(names) <= 3 else f"{shown} and {len(names) - 3} more"


Head = tuple[int, bytes]  # (size, root) of a validly signed checkpoint


def _conflicts(heads: Mapping[str, _Head], tile_readers: Mapping[str, tiles.TileReader],
               findings: list[Finding]) -> dict[str, list[str]]:
    """subject -> why it conflicts, for every checkpoint party to a conflict."""
    by_origin: dict[str, dict[Head, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name, head in heads.items():
        if head.cp is not None:
            by_origin[head.cp.origin][(head.cp.size, head.cp.root)].append(name)
    out: dict[str, list[str]] = defaultdict(list)

    def clash(origin: str, mine: Head, others: list[Head], names: dict[Head, list[str]]) -> None:
        other = "; ".join(f"size {h[0]} (root {_b64(h[1])}) in {_names(names[h])}"
                          for h in others[:3])
        more = f" and {len(others) - 3} more" if len(others) > 3 else ""
        for subject in names[mine]:
            out[subject].append(f"{origin} at size {mine[0]} (root {_b64(mine[1])}) cannot be "
                                f"true with {other}{more}")

    for origin, names in by_origin.items():
        by_size: dict[int, list[Head]] = defaultdict(list)
        for h in names:
            by_size[h[0]].append(h)
        for same in by_size.values():  # one size, two roots: a split view
            for h in same:
                if len(same) > 1:
                    clash(origin, h, sorted(x for x in same if x != h), names)
        reader = tile_readers.get(origin)
        if reader is None:
            continue
        top = max(names)
        hashes = tiles.TileHashReader(top[0], top[1], reader)
        try:
            tree.tree_root(hashes, top[0])
        except (BadInput, IndexError) as exc:
            findings.append(Finding(f"{origin} tiles", "log-consistent", False,
                                    f"the tiles given are not the tree of the largest "
                                    f"checkpoint (size {top[0]}): {exc}"))
            continue
        for old in sorted(names):
            if old[0] >= top[0]:
                continue
            try:
                path = tree.consistency_proof(hashes, old[0], top[0])
            except (BadInput, IndexError):
                continue
            if not tree.check_consistency(path, old[0], top[0], old[1], top[1]):
                clash(origin, old, [top], names)
                clash(origin, top, [old], names)
    return out


def check(log_keys: Mapping[str, OriginKeys], policy: WitnessPolicy,
          checkpoints: Sequence[tuple[str, bytes]], proofs: Sequence[tuple[str, bytes]],
          statements: Sequence[Statement],
          tile_readers: Mapping[str, tiles.TileReader] | None = None) -> list[Finding]:
    """Every finding about the logs; `tile_readers` (per origin) add consistency checks
    between checkpoints of different sizes."""
    checker = _Checker(log_keys, policy)
    findings: list[Finding] = []
    heads: dict[str, _Head] = {}
    parsed: dict[str, proof.Proof] = {}
    for name, data in checkpoints:
        heads[name] = checker.head(data, name)
    for name, data in proofs:
        try:
            parsed[name] = proof.parse(data, name)
        except BadInput as exc:
            findings.append(Finding(name, "log-included", False, f"malformed proof: "
                                    f"{exc.message}"))
            continue
        heads[f"{name} (checkpoint)"] = checker.head(parsed[name].checkpoint, name)
    # cosignatures of one tree count together, whichever copy of its checkpoint holds them
    pooled: dict[tuple[str, int, bytes], frozenset[str]] = defaultdict(frozenset)
    for head in heads.values():
        if head.cp is not None:
            key = (head.cp.origin, head.cp.size, head.cp.root)
            pooled[key] = pooled[key] | head.witnesses
    heads = {name: _Head(h.cp, pooled[(h.cp.origin, h.cp.size, h.cp.root)], h.problem)
             if h.cp is not None else h for name, h in heads.items()}
    for name, head in heads.items():
        if head.cp is None:
            findings.append(Finding(name, "log-signed", False, head.problem))
            continue
        findings.append(Finding(name, "log-signed", True,
                                f"signed by the log key for {head.cp.origin!r}"))
        have = len(head.witnesses)
        findings.append(Finding(name, "log-witnessed", have >= policy.quorum,
                                _quorum_message(have, policy.quorum)))
    conflicts = _conflicts(heads, tile_readers or {}, findings)
    for name, why in conflicts.items():
        findings.append(Finding(name, "conflict-log", False, "; ".join(sorted(why))))
    by_entry: dict[bytes, list[str]] = defaultdict(list)
    for name, p in parsed.items():
        if p.extra is not None and len(p.extra) == tiles.ENTRY_SIZE:
            by_entry[p.extra].append(name)
    for st in statements:
        findings += _statement(st, by_entry.get(st.entry, []), parsed, heads, conflicts,
                               policy)
    return sorted(findings)


def _statement(st: Statement, candidates: list[str], parsed: Mapping[str, proof.Proof],
               heads: Mapping[str, _Head], conflicts: Mapping[str, list[str]],
               policy: WitnessPolicy) -> list[Finding]:
    included: list[tuple[str, _Head]] = []
    for name in candidates:
        p, head = parsed[name], heads[f"{name} (checkpoint)"]
        cp = head.cp
        if cp is not None and cp.origin == st.origin and p.index < cp.size and \
                tree.check_inclusion(p.path, cp.size, p.index, tree.leaf_hash(st.entry),
                                     cp.root):
            included.append((name, head))
    if not included:
        if not policy.required:
            return []
        return [Finding(st.name, "log-included", False,
                        f"not shown in its issuer's log {st.origin!r}: no valid proof of its "
                        "entry")]
    out = [Finding(st.name, "log-included", True,
                   f"in {st.origin!r} by {_names([n for n, _ in included])}")]
    best = max(len(h.witnesses) for _, h in included)
    out.append(Finding(st.name, "log-witnessed", best >= policy.quorum,
                       "its checkpoint has " + _quorum_message(best, policy.quorum)))
    if all(f"{n} (checkpoint)" in conflicts for n, _ in included):
        out.append(Finding(st.name, "conflict-log", False,
                           "every checkpoint that includes it is in a conflicting log"))
    return out
