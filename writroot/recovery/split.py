"""A recovery split: a random 256-bit recovery key, SLIP-39 M-of-N among named holders.

The split's public description (split id, M, N, holders with their member index and a
commitment to their share, the keyid it restores) goes into the ceremony outputs; the shares
go only to their holders. A commitment is SHA-256 over the split id and the share's words:
it lets a holder (or a restore) tell their share belongs to this split, and nothing else.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from writroot.crypto.keys import wipe
from writroot.errors import BadInput
from writroot.jsonio import canonical
from writroot.statements import schema as s

RECOVERY_KEY_BYTES = 32
MAX_SHARES = 16
SPLIT_FORMAT = "writroot-recovery-split/1"


def normalise(mnemonic: str) -> str:
    return " ".join(mnemonic.lower().split())


def commitment(split_id: str, mnemonic: str) -> str:
    return hashlib.sha256(canonical({"format": SPLIT_FORMAT, "split": split_id,
                                     "share": normalise(mnemonic)})).hexdigest()


@dataclass
class Split:
    """A fresh split in memory: call `wipe()` once the shares are handed out."""

    split_id: str
    threshold: int
    holders: list[str]
    keyid: str
    recovery_key: bytearray
    shares: dict[str, str] = field(repr=False)  # holder -> mnemonic
    slip39_id: int = 0
    retires: str = ""

    def description(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": SPLIT_FORMAT, "split": self.split_id, "keyid": self.keyid,
            "threshold": self.threshold, "shares": len(self.holders),
            "slip39_identifier": self.slip39_id,
            "holders": [{"id": h, "member_index": i,
                         "commitment": commitment(self.split_id, self.shares[h])}
                        for i, h in enumerate(self.holders)]}
        if self.retires:
            out["retires"] = self.retires
        return out

    def wipe(self) -> None:
        wipe(self.recovery_key)
        self.shares.clear()


def new_split(threshold: int, holders: list[str], keyid: str, retires: str = "") -> Split:
    """Draw a recovery key and split it M-of-N, one share per holder in the given order."""
    import shamir_mnemonic

    if len(set(holders)) != len(holders):
        raise BadInput("recovery-share holders must be distinct", "recovery_holders")
    if not 2 <= threshold <= len(holders) <= MAX_SHARES:
        raise BadInput(f"a recovery split needs 2 <= M <= N <= {MAX_SHARES} "
                       f"(M = {threshold}, N = {len(holders)})", "recovery_holders")
    key = bytearray(secrets.token_bytes(RECOVERY_KEY_BYTES))
    groups = shamir_mnemonic.generate_mnemonics(1, [(threshold, len(holders))], bytes(key),
                                                b"", extendable=True, iteration_exponent=1)
    mnemonics = list(groups[0])
    ident = shamir_mnemonic.Share.from_mnemonic(mnemonics[0]).identifier
    return Split(secrets.token_hex(8), threshold, list(holders), keyid, key,
                 dict(zip(holders, mnemonics, strict=True)), ident, retires)


def description_check(value: Any, where: str) -> dict[str, Any]:
    """A split's public description, every field checked."""
    holder = lambda v, w: s.record(v, w, {"id": s.name,  # noqa: E731
                                          "member_index": s.integer(0, MAX_SHARES - 1),
                                          "commitment": s.digest})
    desc = s.record(value, where, {
        "format": s.one_of(SPLIT_FORMAT), "split": _split_id, "keyid": s.digest,
        "threshold": s.integer(2, MAX_SHARES), "shares": s.integer(2, MAX_SHARES),
        "slip39_identifier": s.integer(0, 2**15 - 1),
        "holders": s.list_of(holder, 2, MAX_SHARES)}, {"retires": _split_id})
    holders = desc["holders"]
    if len(holders) != desc["shares"] or desc["threshold"] > desc["shares"]:
        raise BadInput("holders, shares and threshold disagree", f"{where}.holders")
    if sorted(h["member_index"] for h in holders) != list(range(len(holders))) or \
            len({h["id"] for h in holders}) != len(holders):
        raise BadInput("holder ids and member indexes must be distinct", f"{where}.holders")
    return desc


def _split_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) != 16 or \
            any(c not in "0123456789abcdef" for c in value):
        raise BadInput("expected a split id of 16 lowercase hex digits", where)
    return value


@dataclass(frozen=True)
class ShareFacts:
    """What a share says about itself (nothing about the secret)."""

    slip39_id: int
    member_index: int
    threshold: int


def share_facts(mnemonic: str, where: str, name: str = "the share") -> ShareFacts:
    """Parse one share; an unknown word or a mistyped one (SLIP-39's checksum) is named by
    its position. Never echoes the words of a share."""
    from writroot.quorum.shares import parse_share

    share = parse_share(mnemonic, name, where)
    if share.group_count != 1:
        raise BadInput("not a writroot recovery share (more than one group)", where)
    return ShareFacts(share.identifier, share.index, share.member_threshold)


def holder_of(desc: dict[str, Any], mnemonic: str, where: str, name: str = "the share") -> str:
    """The holder whose share this is, or a one-line error saying why it is not one."""
    facts = share_facts(mnemonic, where, name)
    if facts.slip39_id != desc["slip39_identifier"] or facts.threshold != desc["threshold"]:
        raise BadInput(f"this share is not of split {desc['split']} (another split)", where)
    mine = commitment(desc["split"], mnemonic)
    for h in desc["holders"]:
        if h["commitment"] == mine:
            return str(h["id"])
    raise BadInput(f"this share is not of split {desc['split']} (it matches no holder's "
                   "share: another split, or a word mistyped in a way the checksum missed)",
                   where)


def combine(desc: dict[str, Any], shares: list[tuple[str, str]]) -> tuple[bytearray, list[str]]:
    """Rebuild the recovery key from (where, mnemonic) pairs; returns it and the holders who
    took part. Too few, repeated, foreign or mistyped shares are refused by name."""
    import shamir_mnemonic

    holders: list[str] = []
    for number, (where, mnemonic) in enumerate(shares, 1):
        holder = holder_of(desc, mnemonic, where, f"share {number}")
        if holder in holders:
            raise BadInput(f"the share of {holder} was given twice; each share counts once",
                           where)
        holders.append(holder)
    if len(holders) < desc["threshold"]:
        raise BadInput(f"{len(holders)} of the {desc['threshold']} shares split "
                       f"{desc['split']} needs ({', '.join(holders) or 'none'}); fewer than "
                       "M shares restore nothing", "recovery shares")
    try:
        secret = shamir_mnemonic.combine_mnemonics([normalise(m) for _, m in shares], b"")
    except shamir_mnemonic.MnemonicError:
        raise BadInput(f"the shares of {', '.join(holders)} do not combine (split "
                       f"{desc['split']})", "recovery shares") from None
    key = bytearray(secret)
    wipe(secret)
    if len(key) != RECOVERY_KEY_BYTES:
        wipe(key)
        raise BadInput("the shares rebuild a secret of the wrong size", "recovery shares")
    return key, holders
