"""The rehearsal's throwaway token, in a process of its own (`python -m
writroot.recovery.worker`): SOFTHSM2_CONF points into a temporary directory the parent removes.

Reads one JSON request on stdin (recovery key, recovery file, message), initialises a token
with random PINs held in memory, restores the key into wrapped custody there, signs the
message (checked by an independent engine), destroys the key, and writes {"signature"} or
{"error"} on stdout. Never prints a secret.
"""

from __future__ import annotations

import base64
import json
import secrets
import sys
from typing import Any

from writroot.crypto.keys import wipe


def _serve(request: dict[str, Any]) -> dict[str, str]:
    from writroot.hsm import softhsm
    from writroot.hsm.custody import Custody
    from writroot.hsm.token import TokenSpec, open_session
    from writroot.recovery.blob import open_blob, recovery_check

    key = bytearray(bytes.fromhex(request.pop("recovery_key")))
    blob = recovery_check(request["recovery"], "recovery file")
    module = str(request["module"])
    label = f"rehearsal-{secrets.token_hex(4)}"
    pin = bytearray(secrets.token_urlsafe(18).encode())
    so_pin = bytearray(secrets.token_urlsafe(18).encode())
    try:
        softhsm.init_token(module, label, bytes(so_pin), bytes(pin))
        private = open_blob(blob, key, "recovery file", blob.keyid)
        wipe(key)
        with open_session(TokenSpec(module, label), rw=True, pin_bytes=pin) as session:
            custody = Custody(session, module)
            try:
                record = custody.adopt(blob.role, "rehearsal", blob.key, private)
            finally:
                wipe(private)
            result = custody.sign(record.keyid, base64.b64decode(request["message"]))
            custody.destroy_key(record)
        return {"signature": base64.b64encode(result.signature).decode(),
                "engine": result.engine, "checked_by": result.checked_by}
    finally:
        wipe(key)
        wipe(pin)
        wipe(so_pin)


def main() -> int:
    from writroot.errors import WritrootError

    try:
        answer = _serve(json.loads(sys.stdin.buffer.read()))
        code = 0
    except WritrootError as exc:
        answer, code = {"error": str(exc)}, 1
    except Exception as exc:  # one line, never a traceback (nor a secret)
        answer, code = {"error": f"{type(exc).__name__}"}, 1
    sys.stdout.write(json.dumps(answer) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
