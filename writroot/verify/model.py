"""The trust engine's values: the anchor, parsed artifacts, statements (one per payload)
and what the phases record about keys and revocations. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from writroot.crypto.keys import PublicKey
from writroot.envelope import Envelope, Signature
from writroot.errors import BadInput, WritrootError
from writroot.rules import merkle
from writroot.statements import Statement, parse_any
from writroot.verify.report import ArtifactResult


@dataclass(frozen=True)
class Anchor:
    """The pinned fleet root: its keyid, and its key when a PEM was given."""

    keyid: str
    key: PublicKey | None = None


@dataclass
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


@dataclass
class Revoked:
    entry: dict[str, Any]
    sequence: int


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


