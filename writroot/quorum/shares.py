"""Reading SLIP-39 shares typed by people: every error names the share (by its number, as
given) and what is wrong with it, and never echoes a word of a valid share.

The checks follow SLIP-39's own order (shamir-mnemonic's word list and parser): each word in
the list, the share's length, its checksum; then the set: one split, no share twice, enough
shares for the split's threshold.
"""

from __future__ import annotations

from typing import Any

from writroot.errors import BadInput

WORD_EXCERPT = 16  # characters of a mistyped word quoted back


def _quoted(word: str) -> str:
    """A mistyped word, short and escaped for a terminal (repr escapes control and bidi
    characters)."""
    return repr(word[:WORD_EXCERPT] + ("…" if len(word) > WORD_EXCERPT else ""))


def split_name(share: Any) -> str:
    """The split a share belongs to: SLIP-39's random identifier, as 4 hex digits."""
    return f"{share.identifier:04x}"


def parse_share(mnemonic: str, name: str, where: str) -> Any:
    """One share (a shamir_mnemonic.Share), or a BadInput naming `name` ("share 2")."""
    import shamir_mnemonic
    from shamir_mnemonic.wordlist import WORD_INDEX_MAP

    words = mnemonic.lower().split()
    if not words:
        raise BadInput(f"{name} is empty", where)
    for number, word in enumerate(words, 1):
        if word not in WORD_INDEX_MAP:
            raise BadInput(f"{name}: word {number} {_quoted(word)} is not in the word list",
                           where)
    try:
        return shamir_mnemonic.Share.from_mnemonic(" ".join(words))
    except shamir_mnemonic.MnemonicError as exc:
        text = str(exc).lower()  # the library's message quotes words: never pass it on
        if "length" in text or "padding" in text:
            raise BadInput(f"{name} has {len(words)} words: a word is missing or extra "
                           "(a share of a 128-bit secret has 20, of a 256-bit one 33)",
                           where) from None
        if "checksum" in text:
            raise BadInput(f"{name} fails its checksum: a word is mistyped, missing or out of "
                           "order", where) from None
        raise BadInput(f"{name} is not a valid share", where) from None


def check_set(shares: list[tuple[str, Any]], where: str) -> None:
    """The named shares are of one split, each once, and enough of them."""
    first_name, first = shares[0]
    for name, share in shares[1:]:
        if share.group_parameters() != first.group_parameters():
            raise BadInput(f"{_pair(first_name, name)} come from different splits "
                           f"({split_name(first)}, {split_name(share)}); give shares of one "
                           "split", where)
    for i, (name_a, a) in enumerate(shares):
        for name_b, b in shares[i + 1:]:
            if a.index == b.index:
                same = a.value == b.value
                raise BadInput(f"{_pair(name_a, name_b)} are the same share" if same else
                               f"{_pair(name_a, name_b)} are both member {a.index + 1} of split "
                               f"{split_name(a)}, with different words: one is mistyped",
                               where)
    need = first.member_threshold
    if len(shares) < need:
        raise BadInput(f"this split needs {need} shares, {len(shares)} given (split "
                       f"{split_name(first)})", where)


def _pair(a: str, b: str) -> str:
    """"share 1", "share 2" -> "shares 1 and 2"; other names are kept whole."""
    if a.startswith("share ") and b.startswith("share "):
        return f"shares {a[6:]} and {b[6:]}"
    return f"{a} and {b}"
