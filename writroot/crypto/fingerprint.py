"""Fingerprints for people: hex in groups of four and PGP words."""

from __future__ import annotations

from writroot.crypto.pgpwords import EVEN, ODD


def hex_groups(hexdigest: str) -> str:
    return " ".join(hexdigest[i : i + 4].upper() for i in range(0, len(hexdigest), 4))


def pgp_words(data: bytes) -> str:
    return " ".join(EVEN[b] if i % 2 == 0 else ODD[b] for i, b in enumerate(data))


def show(hexdigest: str) -> str:
    """Two-line rendering: hex groups, then PGP words."""
    return f"{hex_groups(hexdigest)}\n{pgp_words(bytes.fromhex(hexdigest))}"


def normalise(text: str) -> str:
    """Accept a keyid or digest as people copy it: hex with spaces, colons or upper case (the
    grouped form every screen shows), or its PGP words; return lowercase hex. Text that is
    neither is returned compacted, for the caller's own check to refuse."""
    words = text.split()
    if len(words) > 1 and all(w.isalpha() for w in words):
        from_words = _from_words(words)
        if from_words is not None:
            return from_words
    return "".join(ch for ch in text if ch not in " :-\t").lower()


def _from_words(words: list[str]) -> str | None:
    even = {w.lower(): i for i, w in enumerate(EVEN)}
    odd = {w.lower(): i for i, w in enumerate(ODD)}
    out = bytearray()
    for i, word in enumerate(words):
        table = even if i % 2 == 0 else odd
        if word.lower() not in table:
            return None
        out.append(table[word.lower()])
    return out.hex()


def words_problem(text: str) -> str | None:
    """Why text that looks like PGP words (several words, letters only) is not a 32-byte
    fingerprint in them; None when it is, or when it does not look like words at all."""
    words = text.split()
    if len(words) < 2 or not all(w.isalpha() for w in words):
        return None
    even = {w.lower() for w in EVEN}
    odd = {w.lower() for w in ODD}
    for i, word in enumerate(words):
        if word.lower() not in (even if i % 2 == 0 else odd):
            hint = " (a word of the other list: one is missing or extra before it)" \
                if word.lower() in (odd if i % 2 == 0 else even) else ""
            return f"word {i + 1} {word[:20]!r} is not in the PGP word list{hint}"
    if len(words) != 32:
        return f"{len(words)} words; a fingerprint has 32"
    return None
