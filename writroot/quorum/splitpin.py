"""Quorum-enforced HSM activation: the token PIN split into M-of-N SLIP-39 mnemonics.

The PIN is random, set on the token once, and exists afterwards only while M shares are
combined in memory during a run.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from writroot.crypto.keys import wipe
from writroot.errors import BadInput, HSMError
from writroot.hsm.pin import read_pin

if TYPE_CHECKING:
    from writroot.hsm.softhsm import SlotToken

PIN_BYTES = 16  # 128-bit secret; SLIP-39 needs 16 or more bytes, an even number
PIN_CHARS = 2 * PIN_BYTES  # as typed into the token: hex


def check_token_takes_split_pin(token: SlotToken, name: str) -> None:
    """A split PIN carries 128 bits, never fewer: a token whose PINs cannot be that long
    keeps its PIN, and the officer learns the token's limit (exit 3)."""
    if not token.takes(PIN_CHARS):
        raise HSMError(f"token {name!r} takes PINs of {token.pin_range()}; a split PIN is "
                       f"{PIN_CHARS} characters ({PIN_BYTES * 8} random bits) and is never "
                       "made shorter: not split (protect this token's PIN otherwise)")


def split_new_pin(threshold: int, shares: int) -> tuple[bytearray, list[str]]:
    """A fresh random PIN (hex, as typed into a token) and its M-of-N mnemonics."""
    import shamir_mnemonic

    if not 1 <= threshold <= shares <= 16:
        raise BadInput("need 1 <= M <= N <= 16", "pin shares")
    secret = bytearray(secrets.token_bytes(PIN_BYTES))
    try:
        groups = shamir_mnemonic.generate_mnemonics(1, [(threshold, shares)], bytes(secret),
                                                    b"", extendable=True, iteration_exponent=1)
        pin = bytearray(secret.hex().encode())
    finally:
        wipe(secret)
    return pin, list(groups[0])


def split_id(mnemonic: str) -> str:
    """The split a share belongs to: SLIP-39's random identifier, as 4 hex digits. Every share
    of one split carries the same one; a re-split gets a new one."""
    import shamir_mnemonic

    try:
        share = shamir_mnemonic.Share.from_mnemonic(" ".join(mnemonic.split()))
    except shamir_mnemonic.MnemonicError:
        return "unreadable"
    return f"{share.common_parameters().identifier:04x}"


def combine_pin(sources: list[str]) -> bytearray:
    """Rebuild the PIN from share sources (prompt, env:VAR, file:PATH); wrong or too few
    shares are a clear error."""
    import shamir_mnemonic

    mnemonics = []
    for i, source in enumerate(sources):
        share = read_pin(source, what=f"PIN share {i + 1}")
        mnemonics.append(" ".join(share.decode("utf-8", "replace").split()))
        wipe(share)
    try:
        secret = bytearray(shamir_mnemonic.combine_mnemonics(mnemonics, b""))
    except shamir_mnemonic.MnemonicError:
        # The library's message quotes share words; never echo them.
        splits = sorted({split_id(m) for m in mnemonics})
        mnemonics.clear()
        if len(splits) > 1:
            raise BadInput(f"the PIN shares come from different splits ({', '.join(splits)}); "
                           "give shares of one split", "pin shares") from None
        raise BadInput(f"the {len(sources)} PIN shares given do not rebuild the PIN (too few, "
                       f"or mistyped; split {splits[0] if splits else '?'})",
                       "pin shares") from None
    finally:
        mnemonics.clear()
    pin = bytearray(secret.hex().encode())
    wipe(secret)
    return pin
