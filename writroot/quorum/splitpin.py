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
    """Rebuild the PIN from share sources (prompt, env:VAR, file:PATH); each wrong share is
    named by its number (writroot.quorum.shares), never echoed."""
    import shamir_mnemonic

    from writroot.quorum.shares import check_set, parse_share

    parsed = []
    for i, source in enumerate(sources):
        share = read_pin(source, what=f"PIN share {i + 1}")
        try:
            mnemonic = share.decode("utf-8", "replace")
        finally:
            wipe(share)
        parsed.append((f"share {i + 1}", parse_share(mnemonic, f"share {i + 1}",
                                                     "pin shares")))
        del mnemonic
    try:
        check_set(parsed, "pin shares")
        # Shares are parsed already: recover from them, not from their words again.
        groups = shamir_mnemonic.shamir.ShareGroup()
        for _, share in parsed[:parsed[0][1].member_threshold]:  # any M of them will do
            groups.add(share)
        secret = bytearray(shamir_mnemonic.recover_ems({0: groups}).decrypt(b""))
    except shamir_mnemonic.MnemonicError:
        # The shares parse and agree, yet the digest fails: one was mistyped in a way the
        # checksum missed, or they are not of the split the PIN was made from.
        raise BadInput(f"the {len(parsed)} shares do not rebuild a PIN: one of them is "
                       "wrong", "pin shares") from None
    finally:
        parsed.clear()
    pin = bytearray(secret.hex().encode())
    wipe(secret)
    return pin
