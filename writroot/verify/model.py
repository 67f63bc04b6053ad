"""The trust engine's values: the anchor, parsed artifacts, statements (one per payload)
and what the phases record about keys and revocations. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any

from writroot.crypto.keys import PublicKey
from writroot.envelope import Envelope, Signature
from writroot.errors import BadInput, WritrootError
from writroot.quorum.count import Roster
from writroot.rules import merkle
from writroot.statements import Statement, parse_any
from writroot.verify.report import ArtifactResult


@dataclass(frozen=True)
class Anchor:
    """The pinned fleet root: its keyid, and its key when a PEM was given."""

    keyid: str
    key: PublicKey | None = None


@dataclass(frozen=True, slots=True)
class Trusted:
    key: PublicKey
    role: str
    region: str | None
    statement: Statement | None
    #: For fleet roots: the time span in which the key held authority, and its version.
    since: datetime | None = None
    until: datetime | None = None
    version: int | None = None


@dataclass
class Item:
    """One statement: every file that carries its payload (DSSE §6: identity by payload)."""

    result: ArtifactResult
    envelope: Envelope  # the copies' signatures taken together
    statement: Statement
    digest: str = ""  # SHA-256 of the PAE: a total order and identity independent of names
    derived: Derived | None = None
    #: Each file that carries it: (name, file SHA-256, its own signatures).
    copies: tuple[tuple[str, str, tuple[Signature, ...]], ...] = ()
    verified_keys: dict[str, PublicKey] = field(default_factory=dict)  # whose signature held

    @property
    def order(self) -> tuple[datetime, str, str]:
        return (self.statement.issued_at, self.statement.serial, self.digest)


class Check(Enum):
    """What checking an envelope's signatures by one key found: a verdict on the signature,
    or a component that failed (STYLE §3)."""

    VERIFIED = "verified"
    REJECTED = "rejected"
    ABSENT = "absent"
    ENGINE_FAILED = "engine-failed"


@dataclass(frozen=True)
class Prior:
    """Found by a first pass over everything: custodian keys revoked (target -> entry,
    sequence), and statements (by identity) whose serial another verified statement uses."""

    revoked: Mapping[str, Revoked]
    serials: frozenset[str]


@dataclass(frozen=True, slots=True)
class Revoked:
    entry: dict[str, Any]
    sequence: int


# -- phase results: each phase takes the previous one's frozen result -------------------


@dataclass(frozen=True, slots=True)
class RosterTerm:
    """A roster in force from `since`: its JSON form, checked once, and its plan-tree leaf
    (content, not object identity, is what later phases compare)."""

    since: datetime
    version: int
    json: Mapping[str, Any]
    checked: Roster
    leaf: str

    @classmethod
    def of(cls, since: datetime, checked: Roster) -> RosterTerm:
        as_json = checked.to_json()
        return cls(since, checked.version, as_json, checked,
                   merkle.leaf("roster", as_json).hex())


@dataclass(frozen=True, slots=True)
class RootTerm:
    """A fleet root of the chain and the span in which it held authority (`until` None:
    still in force). `statement` is None for a root known only from a PEM anchor."""

    key: PublicKey
    version: int | None
    since: datetime | None
    until: datetime | None
    statement: Statement | None

    def covers(self, when: datetime) -> bool:
        return self.since is not None and self.since <= when and (
            self.until is None or when <= self.until)


@dataclass(frozen=True, slots=True)
class Chain:
    """The fleet-root chain from the pinned anchor at `at`: the roots in order (the last
    is in force), the policies and rosters in force over time, where it failed. Only the
    root in force must be unexpired (`expired`); superseded roots only had to be valid
    when they signed. `revoked` holds the keyids of roots whose own statements a
    revocation list revokes (set by the revocation step, `under_revocation`)."""

    at: datetime
    fleet: str | None
    roots: tuple[RootTerm, ...]
    #: (since, policy): the policies are the rules' plain dicts, copied; never edited.
    policies: tuple[tuple[datetime, dict[str, Any]], ...]
    rosters: tuple[RosterTerm, ...]
    anchor_failed: bool = False
    fork_at: int | None = None
    revoked: frozenset[str] = frozenset()

    @property
    def in_force(self) -> RootTerm | None:
        return self.roots[-1] if self.roots and not self.anchor_failed else None

    @property
    def expired(self) -> bool:
        """The root in force is outside its validity window at `at`."""
        term = self.in_force
        st = term.statement if term is not None else None
        return st is not None and not st.not_before <= self.at <= st.not_after

    @property
    def holds(self) -> bool:
        """A root is in force, and unexpired."""
        return self.in_force is not None and not self.expired

    def trusts(self, keyid: str, when: datetime | None = None) -> RootTerm | None:
        """The chain's root `keyid`, if the chain holds and (given `when`) that root held
        authority then."""
        if not self.holds:
            return None
        for term in self.roots:
            if term.key.keyid == keyid and (when is None or term.covers(when)
                                            or term.statement is None):
                return term
        return None

    def policy_at(self, when: datetime) -> dict[str, Any]:
        current: dict[str, Any] = self.policies[0][1] if self.policies else {}
        for since, policy in self.policies:
            if since <= when:
                current = policy
        return current

    def roster_at(self, when: datetime) -> RosterTerm | None:
        """The roster in force when a statement was signed."""
        return roster_at(self.rosters, when)

    def revoking(self, keyids: frozenset[str]) -> Chain:
        return replace(self, revoked=self.revoked | keyids)


def roster_at(rosters: Iterable[RosterTerm], when: datetime) -> RosterTerm | None:
    current = None
    for term in sorted(rosters, key=lambda r: (r.since, r.version)):
        if term.since <= when:
            current = term
    return current


@dataclass(frozen=True, slots=True)
class Authorities:
    """The regional roots trusted as authorities (keyid -> the root), those a conflict
    leaves trusted for nothing (keyid -> its statement's name), and the trust domains in
    conflict."""

    regional: Mapping[str, Trusted]
    distrusted: Mapping[str, str]
    contested: frozenset[str]


@dataclass(frozen=True, slots=True)
class Trust:
    """What is established, before any other statement is judged: the chain under
    revocation, the revocations, the authorities, and every key trusted (the chain's
    fleet roots and the authorities' regional roots)."""

    chain: Chain
    revocations: Revocations
    authorities: Authorities
    trusted: Mapping[str, Trusted]
    #: A first pass's findings that the revocation phase comes too late for (`Prior`).
    prior: Prior | None = None


@dataclass(frozen=True, slots=True)
class Revocations:
    """What every verified revocation list says, together (fail-safe): target -> its
    earliest revocation, and the highest sequence among the lists."""

    entries: Mapping[str, Revoked]
    sequence: int | None = None


def genesis_policy(operations: Any) -> dict[str, Any]:
    """Before any policy is in force, a genesis plan's own (for the approvals' lifetime)."""
    for op in operations if isinstance(operations, list) else []:
        if isinstance(op, dict) and op.get("op") == "sign-fleet-root" \
                and isinstance(op.get("policy"), dict):
            return dict(op["policy"])
    return {}


def approval_signer(approval: Any) -> str | None:
    """The keyid an approval says signed it (None when it cannot be read: `count` rejects
    it then, with the reason)."""
    import base64
    import json

    try:
        payload = json.loads(base64.b64decode(approval["payload"], validate=True))
        keyid = payload["issuer"]["keyid"]
    except (KeyError, TypeError, ValueError):
        return None
    return keyid if isinstance(keyid, str) else None


def exact_json(obj: Any) -> str:
    """An exact, fast serialisation for cache keys (C json; types are kept apart)."""
    import json

    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def oscal_name(data: bytes) -> str | None:
    """`<model>/<uuid>@<version>` of an OSCAL JSON document, or None."""
    from writroot.jsonio import loads_strict

    try:
        doc = loads_strict(data, "subject")
        (kind, body), = doc.items()
        return f"{kind}/{body['uuid']}@{body['metadata']['version']}"
    except (BadInput, ValueError, AttributeError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class Source:
    """An artifact read only when it is parsed (so a large set is never all in memory):
    its name, the SHA-256 of its bytes, and how to get the bytes."""

    name: str
    digest: str
    load: Callable[[], bytes]


def sources(given: Iterable[tuple[str, bytes] | Source]) -> list[Source]:
    out = []
    for entry in given:
        if isinstance(entry, Source):
            out.append(entry)
        else:
            name, data = entry
            out.append(Source(name, hashlib.sha256(data).hexdigest(),
                              lambda data=data: data))  # type: ignore[misc]
    return out


def light(envelope: Envelope) -> Envelope:
    """The envelope without payload and signature bytes: what the core needs once every
    signature result is known (payload type and keyids)."""
    return Envelope(envelope.payload_type, b"",
                    tuple(Signature(s.keyid, b"") for s in envelope.signatures))


@dataclass(frozen=True)
class Parsed:
    """One artifact parsed strictly, as the core parses it (picklable, so a process pool can
    do it): its name, the SHA-256 of its bytes, and the envelope and statement, or the
    one-line reason it is not well formed."""

    name: str
    digest: str
    envelope: Envelope | None = None
    statement: Statement | None = None
    error: str = ""
    derived: Derived | None = None


@dataclass(frozen=True)
class Derived:
    """Per-artifact work done once, where the artifact is parsed: the root its inclusion
    proof leads to ("" when it has none or it cannot be computed: the core computes it and
    reports), and the key that tells equal approvals apart."""

    inclusion_root: str
    approvals: str
    identity: str = ""  # SHA-256 of the PAE: envelopes with one payload are one statement


def approvals_key(approvals: Any) -> str:
    """Equal exactly (true is not 1) <=> equal keys: SHA-256 of an exact serialisation."""
    return hashlib.sha256(exact_json(approvals).encode()).hexdigest()


def _derive(envelope: Envelope, statement: Statement) -> Derived:
    cer = statement.ceremony
    root = ""
    if "inclusion" in cer and "plan" not in cer:
        try:
            root = merkle.inclusion_root(cer["inclusion"]) or ""
        except (WritrootError, KeyError, TypeError, ValueError, AttributeError):
            root = ""
    return Derived(root, approvals_key(cer.get("approvals")),
                   hashlib.sha256(envelope.pae()).hexdigest())


def parse_artifact(name: str, data: bytes, digest: str = "") -> Parsed:
    """The strict parse of one artifact (envelope, then statement); pure."""
    digest = digest or hashlib.sha256(data).hexdigest()
    try:
        envelope = Envelope.parse(data, name)
        statement = parse_any(envelope.payload_type, envelope.payload, f"{name}: payload")
    except (BadInput, WritrootError) as exc:
        return Parsed(name, digest, error=str(exc))
    return Parsed(name, digest, envelope, statement, derived=_derive(envelope, statement))


