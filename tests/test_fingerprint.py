"""Human fingerprints: hex groups, the PGP word list, and normalising typed keyids."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from writroot.crypto import fingerprint
from writroot.crypto.pgpwords import EVEN, ODD

ABC_SHA256 = hashlib.sha256(b"abc").hexdigest()


def test_known_sha256_is_what_we_think() -> None:
    assert ABC_SHA256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_hex_groups_of_known_digest() -> None:
    assert fingerprint.hex_groups(ABC_SHA256) == (
        "BA78 16BF 8F01 CFEA 4141 40DE 5DAE 2223 B003 61A3 9617 7A9C B410 FF61 F200 15AD"
    )


def test_hex_groups_short_and_empty() -> None:
    assert fingerprint.hex_groups("abcdef") == "ABCD EF"
    assert fingerprint.hex_groups("") == ""


def test_pgp_words_published_example() -> None:
    data = bytes.fromhex("E58294F2E9A227486E8B061B31CC528FD7FA3F19")
    assert fingerprint.pgp_words(data) == (
        "topmost Istanbul Pluto vagabond treadmill Pacific brackish dictator goldfish Medusa "
        "afflict bravado chatter revolver Dupont midsummer stopwatch whimsical cowbell bottomless"
    )


def test_pgp_words_alternate_tables_by_position() -> None:
    assert fingerprint.pgp_words(b"\x00\x00") == "aardvark adroitness"
    assert fingerprint.pgp_words(b"\xff\xff") == "Zulu Yucatan"
    assert fingerprint.pgp_words(b"\x00\x00\x00") == "aardvark adroitness aardvark"
    assert fingerprint.pgp_words(b"") == ""


@pytest.mark.parametrize(("name", "table"), [("EVEN", EVEN), ("ODD", ODD)])
def test_word_table_has_256_distinct_words(name: str, table: tuple[str, ...]) -> None:
    assert len(table) == 256, name
    assert len(set(table)) == 256, name
    assert len({w.lower() for w in table}) == 256, name
    assert all(w.isalpha() for w in table), name


def test_word_tables_are_disjoint() -> None:
    assert not set(EVEN) & set(ODD)
    assert not {w.lower() for w in EVEN} & {w.lower() for w in ODD}


def test_word_table_anchors() -> None:
    """Spot checks against the published list (first, last, and a few in between)."""
    assert (EVEN[0x00], ODD[0x00]) == ("aardvark", "adroitness")
    assert (EVEN[0x01], ODD[0x01]) == ("absurd", "adviser")
    assert (EVEN[0x7F], ODD[0x7F]) == ("lockup", "integrate")
    assert (EVEN[0x80], ODD[0x80]) == ("merit", "intention")
    assert (EVEN[0x88], ODD[0x88]) == ("newborn", "maritime")
    assert (EVEN[0xFE], ODD[0xFE]) == ("woodlark", "yesteryear")
    assert (EVEN[0xFF], ODD[0xFF]) == ("Zulu", "Yucatan")


def test_show_renders_two_lines() -> None:
    hex_line, words_line = fingerprint.show(ABC_SHA256).split("\n")
    assert hex_line == fingerprint.hex_groups(ABC_SHA256)
    assert words_line == fingerprint.pgp_words(bytes.fromhex(ABC_SHA256))
    assert len(words_line.split()) == 32


@pytest.mark.parametrize(
    "typed",
    [
        ABC_SHA256,
        ABC_SHA256.upper(),
        "BA78 16BF 8F01 CFEA 4141 40DE 5DAE 2223 B003 61A3 9617 7A9C B410 FF61 F200 15AD",
        ":".join(ABC_SHA256[i : i + 2] for i in range(0, 64, 2)),
        ":".join(ABC_SHA256[i : i + 2] for i in range(0, 64, 2)).upper(),
        "  Ba78 16bF:8F01 cfea  4141:40de 5DAE 2223 b003 61A3 9617 7a9c B410 FF61 f200 15ad ",
    ],
    ids=["lower", "upper", "hex-groups", "colons", "colons-upper", "mixed"],
)
def test_normalise_accepts_spaces_colons_upper_case(typed: str) -> None:
    assert fingerprint.normalise(typed) == ABC_SHA256


@settings(max_examples=50, deadline=None)
@given(digest=st.binary(min_size=32, max_size=32))
def test_hex_groups_normalise_round_trip(digest: bytes) -> None:
    hexdigest = digest.hex()
    grouped = fingerprint.hex_groups(hexdigest)
    assert len(grouped.split()) == 16
    assert fingerprint.normalise(grouped) == hexdigest
    words = fingerprint.pgp_words(digest).split()
    assert len(words) == 32
    assert [EVEN.index(w) if i % 2 == 0 else ODD.index(w) for i, w in enumerate(words)] \
        == list(digest)
