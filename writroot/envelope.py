"""DSSE v1 envelopes: PAE, strict parsing, canonical serialisation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from writroot.errors import BadInput, excerpt
from writroot.jsonio import b64decode, b64encode, canonical, is_hex_digest, loads_strict

if TYPE_CHECKING:
    from writroot.crypto.keys import PublicKey

MAX_ENVELOPE_BYTES = 4 * 1024 * 1024
MAX_PAYLOAD_BYTES = 2 * 1024 * 1024
MAX_SIGNATURES = 16
MAX_SIGNATURE_BYTES = 64 * 1024
WRITROOT_PREFIX = "application/vnd.writroot."
IN_TOTO = "application/vnd.in-toto+json"


INTOTO_PAYLOAD_TYPE = IN_TOTO
#: Statement types carried as in-toto Statement v1 (the writroot header rides in the
#: predicate), so that trestle and in-toto tooling read them.
INTOTO_TYPES = ("oscal-baseline", "oscal-overlay", "release-provenance")


def payload_type_for(statement_type: str) -> str:
    if statement_type in INTOTO_TYPES:
        return INTOTO_PAYLOAD_TYPE
    return f"{WRITROOT_PREFIX}{statement_type}+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: "DSSEv1" SP len(type) SP type SP len(body) SP body."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def pae(self) -> bytes:
        return pae(self.payload_type, self.payload)

    def signed_by(self, key: PublicKey) -> bool:
        """Some signature under the key's (computed) keyid verifies over the PAE."""
        from writroot.crypto import engines

        alg = key.algorithm
        verifier = engines.verifier_for(alg)
        message = self.pae()
        return any(s.keyid == key.keyid and verifier.verify(alg, key.raw, message, s.sig)
                   for s in self.signatures)

    def to_json(self) -> dict[str, Any]:
        return {"payloadType": self.payload_type, "payload": b64encode(self.payload),
                "signatures": [{"keyid": s.keyid, "sig": b64encode(s.sig)}
                               for s in self.signatures]}

    def dumps(self) -> bytes:
        return canonical(self.to_json()) + b"\n"

    @classmethod
    def parse(cls, data: bytes, where: str) -> Envelope:
        obj = loads_strict(data, where, MAX_ENVELOPE_BYTES)
        return cls.from_json(obj, where)

    @classmethod
    def from_json(cls, obj: Any, where: str) -> Envelope:
        if not isinstance(obj, dict):
            raise BadInput("an envelope must be a JSON object", where)
        for name in ("payloadType", "payload", "signatures"):
            if name not in obj:
                raise BadInput(f"missing field {name!r}", where)
        extra = set(obj) - {"payloadType", "payload", "signatures"}
        if extra:
            raise BadInput(f"unknown field {excerpt(sorted(extra)[0], 24)}", where)
        ptype = obj["payloadType"]
        if not isinstance(ptype, str) or not ptype or len(ptype) > 200:
            raise BadInput("expected a non-empty string", f"{where}: payloadType")
        payload = b64decode(obj["payload"], f"{where}: payload", MAX_PAYLOAD_BYTES)
        sigs = obj["signatures"]
        if not isinstance(sigs, list) or not sigs:
            raise BadInput("expected a non-empty list", f"{where}: signatures")
        if len(sigs) > MAX_SIGNATURES:
            raise BadInput(f"more than {MAX_SIGNATURES} signatures", f"{where}: signatures")
        parsed = []
        for i, s in enumerate(sigs):
            at = f"{where}: signatures[{i}]"
            if not isinstance(s, dict) or set(s) != {"keyid", "sig"}:
                raise BadInput("expected exactly {keyid, sig}", at)
            if not is_hex_digest(s["keyid"]):
                raise BadInput("keyid must be 64 lowercase hex digits", f"{at}.keyid")
            parsed.append(Signature(s["keyid"], b64decode(s["sig"], f"{at}.sig",
                                                          MAX_SIGNATURE_BYTES)))
        return cls(ptype, payload, tuple(parsed))
