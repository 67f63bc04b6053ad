"""A throwaway SoftHSM2 token in a temp dir, removed on exit."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from writroot.crypto.keys import wipe
from writroot.hsm import softhsm
from writroot.hsm.custody import Custody
from writroot.hsm.token import TokenSpec, default_module, open_session

LABEL = "writroot-bench"


@contextmanager
def throwaway_custody() -> Iterator[Custody]:
    """Custody on a fresh token; SOFTHSM2_CONF must not have been used by this process yet."""
    workdir = Path(tempfile.mkdtemp(prefix="writroot-bench-"))
    previous = os.environ.get("SOFTHSM2_CONF")
    user_pin = bytearray(secrets.token_urlsafe(18).encode())
    so_pin = bytearray(secrets.token_urlsafe(18).encode())
    try:
        softhsm.use_config(softhsm.write_config(workdir))
        module = default_module()
        softhsm.init_token(module, LABEL, bytes(so_pin), bytes(user_pin))
        with open_session(TokenSpec(module, LABEL), rw=True, pin_bytes=user_pin) as session:
            yield Custody(session, module)
    finally:
        wipe(user_pin)
        wipe(so_pin)
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous
        shutil.rmtree(workdir, ignore_errors=True)
