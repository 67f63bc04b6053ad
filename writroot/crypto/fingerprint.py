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
    """Accept a keyid typed with spaces, colons or upper case; return 64 lowercase hex."""
    return "".join(ch for ch in text if ch not in " :-\t").lower()
