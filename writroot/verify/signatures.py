"""Signature checks: Verified | Rejected | Absent | EngineFailed, over every copy of a
statement (its signatures taken together), results from the bulk pass reused by content."""

from __future__ import annotations

from writroot.crypto import engines
from writroot.crypto.keys import PublicKey
from writroot.envelope import Signature
from writroot.errors import EngineFault, EngineUnavailable
from writroot.verify.model import Check, Item
from writroot.verify.state import Verifier


def known(v: Verifier, item: Item, keyid: str) -> bool | None:
    """The bulk result for a signature by `keyid` over any copy, when every copy that
    carries one has a result (None: check here)."""
    if not v.signatures:
        return None
    found: list[bool | None] = [v.signatures.get((digest, keyid))
                                for _name, digest, sigs in item.copies
                                if any(s.keyid == keyid for s in sigs)]
    if any(found):
        return True
    return False if found and all(f is not None for f in found) else None


def check(v: Verifier, item: Item, key: PublicKey) -> Check:
    """Does a signature under this key verify (with the primary engine)? No findings."""
    if not any(s.keyid == key.keyid for s in item.envelope.signatures):
        return Check.ABSENT
    cached = v.verified.get((item.digest, key.keyid))
    if cached is None:
        cached = known(v, item, key.keyid)
    if cached is None:
        try:
            primary = engines.verifier_for(key.algorithm)
            message = item.envelope.pae()
            cached = any(primary.verify(key.algorithm, key.raw, message, s.sig)
                         for s in item.envelope.signatures
                         if s.keyid == key.keyid and s.sig)
        except (EngineFault, EngineUnavailable) as exc:
            v.faults[(item.digest, key.keyid)] = str(exc)
            return Check.ENGINE_FAILED
        v.verified[(item.digest, key.keyid)] = cached
    return Check.VERIFIED if cached else Check.REJECTED


def signed_by(v: Verifier, item: Item, key: PublicKey) -> bool:
    """Silently: does a signature under this key verify? (Engine faults count as not
    verified here and are reported by `signature_valid`.)"""
    return check(v, item, key) is Check.VERIFIED


def copy_signed(v: Verifier, item: Item, digest: str, sigs: tuple[Signature, ...],
                key: PublicKey) -> bool:
    """Does one file's own signature under `key` verify (the statement's PAE)?"""
    cached = v.signatures.get((digest, key.keyid))
    if cached is not None:
        return cached
    mine = [s for s in sigs if s.keyid == key.keyid and s.sig]
    if not mine or not item.envelope.payload:
        return False
    try:
        primary = engines.verifier_for(key.algorithm)
        message = item.envelope.pae()
        return any(primary.verify(key.algorithm, key.raw, message, s.sig) for s in mine)
    except (EngineFault, EngineUnavailable):
        return False

# -- signatures and windows -----------------------------------------------------------


def signature_valid(v: Verifier, item: Item, key: PublicKey) -> bool:
    """At least one signature under the key's computed keyid verifies (and independently)."""
    alg = key.algorithm
    if not v.independent:
        verdict = check(v, item, key)
        if verdict is Check.ENGINE_FAILED:
            v.fail(item, "engine-error", f"could not check the signature by "
                   f"{key.keyid}: {v.faults[(item.digest, key.keyid)]}")
            return False
        if verdict is Check.ABSENT:
            v.fail(item, "signature-present", f"no signature by {key.keyid}")
            return False
        if verdict is Check.VERIFIED:
            item.result.checked_by.add(engines.verifier_for(alg).name)
            item.verified_keys[key.keyid] = key
            return True
        if verdict is Check.REJECTED:
            v.fail(item, "signature-valid", f"signature by {key.keyid} does not verify")
            return False
    sigs = [s for s in item.envelope.signatures if s.keyid == key.keyid]
    if not sigs:
        v.fail(item, "signature-present", f"no signature by {key.keyid}")
        return False
    message = item.envelope.pae()
    try:
        primary = engines.verifier_for(alg)
        for sig in sigs:
            if not primary.verify(alg, key.raw, message, sig.sig):
                continue
            item.result.checked_by.add(primary.name)
            second = engines.independent_for(alg, primary)
            if not second.verify(alg, key.raw, message, sig.sig):
                v.fail(item, "signature-independent",
                       f"{second.name} rejects the signature by {key.keyid} that "
                       f"{primary.name} accepts")
                return False
            item.result.checked_by.add(second.name)
            item.verified_keys[key.keyid] = key
            return True
    except (EngineFault, EngineUnavailable) as exc:
        v.fail(item, "engine-error", f"could not check the signature by {key.keyid}: "
               f"{exc}")
        return False
    v.fail(item, "signature-valid", f"signature by {key.keyid} does not verify")
    return False
