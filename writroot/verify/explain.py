"""`verify --explain`: what an auditor needs to check one artifact with OpenSSL 3.5 alone.

Writes, to a new directory: the envelope, its payload (base64, as in the envelope), the PAE
bytes, each signature as raw bytes, each signer's PEM (from the statements verified beside
it, or the pinned PEM) and `verify-openssl.sh`, a POSIX shell script that rebuilds the PAE
from the payload with `printf` and `base64`, recomputes every keyid from its PEM, and runs
`openssl pkeyutl -verify -rawin` for each signature. Nothing in the script trusts writroot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from writroot.crypto.keys import PublicKey
from writroot.envelope import Envelope
from writroot.errors import BadInput
from writroot.jsonio import b64encode
from writroot.verify.core import Anchor
from writroot.verify.report import Report

SCRIPT = "verify-openssl.sh"


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
        if r.statement is not None:
            add(r.statement.subject)
    return keys


def _script(stem: str, payload_type: str, steps: list[tuple[str, str, str]]) -> str:
    lines = [
        "#!/bin/sh",
        f"# Verify {stem} with OpenSSL >= 3.5 and POSIX tools only (no writroot).",
        "# Debian 12 ships OpenSSL 3.0 (no SLH-DSA, no ML-DSA): run this in a Debian 13",
        "# root (docs/auditor.md, 'The OpenSSL route').",
        "set -eu",
        'cd "$(dirname "$0")"',
        "openssl version",
        f"TYPE='{payload_type}'",
        f"base64 -d < {stem}.payload.b64 > {stem}.payload",
        f"grep -q -F \"\\\"payload\\\":\\\"$(cat {stem}.payload.b64)\\\"\" {stem}.envelope.json"
        " || { echo 'payload.b64 is not the envelope payload'; exit 1; }",
        f"printf 'DSSEv1 %d %s %d ' \"${{#TYPE}}\" \"$TYPE\" \"$(($(wc -c < {stem}.payload)))\""
        f" > {stem}.pae.rebuilt",
        f"cat {stem}.payload >> {stem}.pae.rebuilt",
        f"cmp {stem}.pae.rebuilt {stem}.pae || {{ echo 'PAE differs'; exit 1; }}",
        "echo 'PAE rebuilt from the payload: identical'",
    ]
    for pem, sig, keyid in steps:
        digest = "-digest sha384 " if pem.endswith(".ecdsa.pem") else ""
        lines += [
            f"got=$(openssl pkey -pubin -in {pem} -outform DER | openssl dgst -sha256 -r "
            "| cut -d' ' -f1)",
            f"[ \"$got\" = {keyid} ] || {{ echo \"keyid of {pem} is $got, not {keyid}\"; "
            "exit 1; }",
            f"openssl pkeyutl -verify -rawin {digest}-pubin -inkey {pem} -in {stem}.pae "
            f"-sigfile {sig}",
        ]
    lines.append("echo 'every signature verifies'")
    return "\n".join(lines) + "\n"


def explain(artifact: Path, data: bytes, report: Report, anchor: Anchor, outdir: Path) -> None:
    from writroot.outputs import Publication

    env = Envelope.parse(data, str(artifact))
    stem = artifact.name.removesuffix(".json").removesuffix(".dsse") or "artifact"
    keys = known_keys(report, anchor)
    files: dict[str, bytes] = {f"{stem}.envelope.json": data,
                               f"{stem}.payload.b64": b64encode(env.payload).encode(),
                               f"{stem}.pae": env.pae()}
    steps: list[tuple[str, str, str]] = []
    for i, sig in enumerate(env.signatures):
        key = keys.get(sig.keyid)
        if key is None:
            raise BadInput(f"signatures[{i}]: no verified statement names key {sig.keyid}; "
                           "pass the statements that certify it (or the PEM as --anchor)",
                           str(artifact))
        suffix = ".ecdsa.pem" if key.algorithm.family == "ecdsa" else ".pem"
        pem = f"{sig.keyid[:16]}{suffix}"
        files[pem] = key.pem.encode()
        files[f"{stem}.sig{i}.bin"] = sig.sig
        steps.append((pem, f"{stem}.sig{i}.bin", sig.keyid))
    with Publication(outdir, "--explain", dir_mode=0o755) as pub:
        for name, body in sorted(files.items()):
            pub.write(name, body)
        pub.write(SCRIPT, _script(stem, env.payload_type, steps).encode(), 0o755)
