"""`verify --explain`: what an auditor needs to check one artifact with OpenSSL 3.5 alone.

Writes, to a new directory, files with constant names: the envelope, its payload (base64, as
in the envelope), the PAE bytes, each signature as raw bytes, each signer's PEM (from the
statements verified beside it, or the pinned PEM) and `verify-openssl.sh`, a POSIX shell
script that checks `openssl version` first, rebuilds the PAE from the payload with `printf`
and `base64`, recomputes every keyid from its PEM, and runs `openssl pkeyutl -verify -rawin`
for each signature. Nothing in the script trusts writroot.

The inputs are hostile (DESIGN §6): no file name reaches the script, and the only values from
the artifact that do (its payloadType and keyids) are checked against what they must be (a
known payload type, 64 lowercase hex digits) and shell-quoted. Only an artifact that verified
is explained.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from writroot.crypto.keys import PublicKey
from writroot.envelope import IN_TOTO, Envelope, payload_type_for
from writroot.errors import BadInput, VerificationFailed, WritrootError
from writroot.jsonio import b64encode
from writroot.verify.core import Anchor
from writroot.verify.report import Report

SCRIPT = "verify-openssl.sh"
ENVELOPE, PAYLOAD_B64, PAE = "envelope.json", "payload.b64", "pae.bin"
_KEYID = re.compile(r"[0-9a-f]{64}")


def known_payload_types() -> frozenset[str]:
    from writroot.statements import SUBJECTS

    return frozenset({IN_TOTO, *(payload_type_for(t) for t in SUBJECTS)})


def known_keys(report: Report, anchor: Anchor) -> dict[str, PublicKey]:
    """Every key a statement in the report certifies or names, by keyid."""
    keys: dict[str, PublicKey] = {}
    if anchor.key is not None:
        keys[anchor.key.keyid] = anchor.key

    def add(value: Any) -> None:
        if isinstance(value, PublicKey):
            keys.setdefault(value.keyid, value)
        elif isinstance(value, dict):
            for v in value.values():
                add(v)
        elif isinstance(value, list):
            for v in value:
                add(v)

    for r in report.results:
        if r.statement is not None and r.ok:
            add(r.statement.subject)
    return keys


def script(payload_type: str, steps: list[tuple[str, str, str]]) -> str:
    """The OpenSSL script; `payload_type` and each keyid are checked here once more, so that
    nothing unchecked can be quoted into it."""
    if payload_type not in known_payload_types():
        raise BadInput(f"unknown payloadType {payload_type!r}", "payloadType")
    for pem, sig, keyid in steps:
        if not _KEYID.fullmatch(keyid) or not re.fullmatch(r"key[0-9]+(\.ecdsa)?\.pem", pem) \
                or not re.fullmatch(r"sig[0-9]+\.bin", sig):
            raise BadInput("not a keyid or a constant file name", "signatures")
    q = shlex.quote
    lines = [
        "#!/bin/sh",
        "# Verify envelope.json with OpenSSL >= 3.5 and POSIX tools only (no writroot).",
        "# Debian 12 ships OpenSSL 3.0 (no SLH-DSA, no ML-DSA): run this in a Debian 13",
        "# root (docs/auditor.md, 'The OpenSSL route').",
        "set -eu",
        'cd "$(dirname "$0")"',
        "v=$(openssl version 2>/dev/null) || { echo 'needs OpenSSL >= 3.5: no openssl found';"
        " exit 1; }",
        'case "$v" in',
        "  'OpenSSL 3.'[5-9]*|'OpenSSL 3.'[1-9][0-9]*|'OpenSSL '[4-9]*) echo \"$v\" ;;",
        "  *) echo \"needs OpenSSL >= 3.5 (SLH-DSA, ML-DSA); this is $v\"; exit 1 ;;",
        "esac",
        f"TYPE={q(payload_type)}",
        f"base64 -d < {PAYLOAD_B64} > payload.bin",
        f"grep -q -F \"\\\"payload\\\":\\\"$(cat {PAYLOAD_B64})\\\"\" {ENVELOPE}"
        " || { echo 'payload.b64 is not the envelope payload'; exit 1; }",
        "printf 'DSSEv1 %d %s %d ' \"${#TYPE}\" \"$TYPE\" \"$(($(wc -c < payload.bin)))\""
        " > pae.rebuilt",
        "cat payload.bin >> pae.rebuilt",
        f"cmp pae.rebuilt {PAE} || {{ echo 'PAE differs'; exit 1; }}",
        "echo 'PAE rebuilt from the payload: identical'",
    ]
    for pem, sig, keyid in steps:
        digest = "-digest sha384 " if pem.endswith(".ecdsa.pem") else ""
        lines += [
            f"got=$(openssl pkey -pubin -in {pem} -outform DER | openssl dgst -sha256 -r "
            "| cut -d' ' -f1)",
            f"[ \"$got\" = {q(keyid)} ] || {{ echo \"keyid of {pem} is $got, not \"{q(keyid)};"
            " exit 1; }",
            f"openssl pkeyutl -verify -rawin {digest}-pubin -inkey {pem} -in {PAE} "
            f"-sigfile {sig}",
        ]
    lines.append("echo 'every signature verifies'")
    return "\n".join(lines) + "\n"


def _verified(artifact: Path, env: Envelope, report: Report,
              keys: dict[str, PublicKey]) -> None:
    """Refuse (exit 1) unless the report verified this statement and every signature in this
    very envelope verifies under a key the report trusts."""
    from writroot.crypto import engines
    from writroot.statements import parse_any

    where = str(artifact)
    if env.payload_type not in known_payload_types():
        raise VerificationFailed(f"unknown payloadType {env.payload_type!r}; not explained",
                                 f"{where}: payloadType")
    try:
        st = parse_any(env.payload_type, env.payload, where)
    except WritrootError as exc:
        raise VerificationFailed(f"does not verify ({exc.message}); not explained",
                                 where) from None
    if payload_type_for(st.type) != env.payload_type or not any(
            r.ok and r.statement is not None and r.statement.type == st.type
            and r.statement.document == st.document for r in report.results):
        raise VerificationFailed("this statement did not verify against the pinned anchor "
                                 "(run verify without --explain to see why); not explained",
                                 where)
    message = env.pae()
    for i, sig in enumerate(env.signatures):
        key = keys.get(sig.keyid)
        if key is None:
            raise VerificationFailed(f"no verified statement names key {sig.keyid}; not "
                                     "explained", f"{where}: signatures[{i}]")
        alg = key.algorithm
        if not engines.verifier_for(alg).verify(alg, key.raw, message, sig.sig):
            raise VerificationFailed("signature does not verify; not explained",
                                     f"{where}: signatures[{i}]")


def explain(artifact: Path, data: bytes, report: Report, anchor: Anchor,
            outdir: Path) -> list[str]:
    """Write the explanation of a verified artifact; return the file names written."""
    from writroot.outputs import Publication

    env = Envelope.parse(data, str(artifact))
    keys = known_keys(report, anchor)
    _verified(artifact, env, report, keys)
    files: dict[str, bytes] = {ENVELOPE: data, PAYLOAD_B64: b64encode(env.payload).encode(),
                               PAE: env.pae()}
    steps: list[tuple[str, str, str]] = []
    for i, sig in enumerate(env.signatures):
        key = keys[sig.keyid]
        pem = f"key{i}.ecdsa.pem" if key.algorithm.family == "ecdsa" else f"key{i}.pem"
        files[pem] = key.pem.encode()
        files[f"sig{i}.bin"] = sig.sig
        steps.append((pem, f"sig{i}.bin", sig.keyid))
    body = script(env.payload_type, steps).encode()
    with Publication(outdir, "--explain", dir_mode=0o755) as pub:
        for name, content in sorted(files.items()):
            pub.write(name, content)
        pub.write(SCRIPT, body, 0o755)
    return [*sorted(files), SCRIPT]
