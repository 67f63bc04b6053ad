"""writroot/log/: RFC 9162 proofs, C2SP tiles, signed notes, checkpoints, ML-DSA-44
cosignatures, tlog-proof files and the witness's decision, each with its hostile cases.
(Go implementations check the same bytes in tests/test_interop.py.)"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from writroot.errors import BadInput, VerificationFailed
from writroot.log import checkpoint, cosignature, logfile, note, proof, tiles, tree, witness
from writroot.log.checkpoint import Checkpoint
from writroot.log.logfile import Log, MemoryKey

CLOCK = 1_780_000_000


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 2.1.1, recursively, as the specification writes it."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return tree.node_hash(mth(leaves[:k]), mth(leaves[k:]))


LEAVES = [tree.leaf_hash(b"entry %d" % i) for i in range(70)]


@pytest.fixture(scope="module")
def small() -> tree.MemoryTree:
    t = tree.MemoryTree()
    t.extend(LEAVES)
    return t


@pytest.fixture(scope="module")
def keys() -> dict[str, MemoryKey]:
    return {"log": MemoryKey.generate(), "w1": MemoryKey.generate(), "w2": MemoryKey.generate()}


# ------------------------------------------------------------------------------- tree


def test_leaf_and_node_hashes_are_rfc_9162() -> None:
    assert tree.leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert tree.node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32
                                                                  + b"b" * 32).digest()
    assert tree.tree_root(tree.MemoryTree(), 0) == hashlib.sha256(b"").digest()


def test_roots_match_the_recursive_definition(small: tree.MemoryTree) -> None:
    for n in range(len(LEAVES) + 1):
        assert small.root(n) == mth(LEAVES[:n]), n


def test_every_inclusion_proof_checks_and_a_wrong_leaf_does_not(small: tree.MemoryTree) -> None:
    for n in range(1, len(LEAVES) + 1):
        root = mth(LEAVES[:n])
        for i in range(n):
            path = tree.inclusion_proof(small, n, i)
            assert tree.check_inclusion(path, n, i, LEAVES[i], root)
            assert not tree.check_inclusion(path, n, i, LEAVES[(i + 1) % len(LEAVES)], root)
            if n > 1:
                assert not tree.check_inclusion(path, n, (i + 1) % n, LEAVES[i], root) \
                    or (i + 1) % n == i


def test_every_consistency_proof_checks_and_a_fork_does_not(small: tree.MemoryTree) -> None:
    fork = LEAVES[:]
    fork[20] = tree.leaf_hash(b"forked")
    for n in range(1, len(LEAVES) + 1):
        for m in range(n + 1):
            path = tree.consistency_proof(small, m, n)
            assert tree.check_consistency(path, m, n, mth(LEAVES[:m]), mth(LEAVES[:n]))
            if m > 20:
                assert not tree.check_consistency(path, m, n, mth(fork[:m]), mth(LEAVES[:n]))
                assert not tree.check_consistency(path, m, n, mth(LEAVES[:m]), mth(fork[:n]))


@pytest.mark.parametrize("bad", [
    "extra hash", "missing hash", "short hash", "index at size", "size beyond int64",
])
def test_malformed_proofs_are_false_never_an_exception(small: tree.MemoryTree,
                                                        bad: str) -> None:
    n, i = 50, 17
    path = tree.inclusion_proof(small, n, i)
    root = mth(LEAVES[:n])
    args: dict[str, Any] = {"proof": path, "size": n, "index": i}
    if bad == "extra hash":
        args["proof"] = [*path, b"\x00" * 32]
    elif bad == "missing hash":
        args["proof"] = path[:-1]
    elif bad == "short hash":
        args["proof"] = [path[0][:31], *path[1:]]
    elif bad == "index at size":
        args["index"] = n
    else:
        args["size"] = 2**64
    assert not tree.check_inclusion(args["proof"], args["size"], args["index"], LEAVES[i], root)
    cpath = tree.consistency_proof(small, 30, n)
    assert not tree.check_consistency([*cpath, b"\x00" * 32], 30, n, mth(LEAVES[:30]), root)
    assert not tree.check_consistency(cpath[:-1], 30, n, mth(LEAVES[:30]), root)
    assert not tree.check_consistency([b"x"] * 3, 30, n, mth(LEAVES[:30]), root)
    assert not tree.check_consistency([], 30, 30, mth(LEAVES[:30]), root)
    assert not tree.check_consistency(cpath, 31, n, mth(LEAVES[:30]), root)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 600), st.data())
def test_proofs_hold_for_any_size(size: int, data: st.DataObject) -> None:
    leaves = [tree.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    t = tree.MemoryTree()
    t.extend(leaves)
    i = data.draw(st.integers(0, size - 1))
    m = data.draw(st.integers(0, size))
    root = t.root()
    assert tree.check_inclusion(tree.inclusion_proof(t, size, i), size, i, leaves[i], root)
    assert tree.check_consistency(tree.consistency_proof(t, m, size), m, size, t.root(m), root)


# ------------------------------------------------------------------------------- tiles


def test_tile_paths_follow_c2sp() -> None:
    assert tiles.encode_index(1234067) == "x001/x234/067"
    assert tiles.tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tiles.tile_path(tiles.DATA, 5, 8) == "tile/entries/005.p/8"
    assert tiles.tile_path(2, 0, 1) == "tile/2/000.p/1"
    for t in (tiles.Tile(0, 1234067, 256), tiles.Tile(tiles.DATA, 0, 1), tiles.Tile(63, 7, 255)):
        assert tiles.parse_tile_path(t.path) == t


@pytest.mark.parametrize("path", [
    "tile/00/000", "tile/64/000", "tile/0/x000/001", "tile/0/1", "tile/0/0001", "tile/0/000.p/0",
    "tile/0/000.p/256", "tile/0/000.p/08", "tile/0/001/002", "tile/data/000", "tile/0/../000",
    "/tile/0/000", "tile/entries/000.p/", "tile/0/x001",
])
def test_malformed_tile_paths_are_refused(path: str) -> None:
    with pytest.raises(BadInput):
        tiles.parse_tile_path(path)


def test_tiles_for_70000_entries_are_the_c2sp_example() -> None:
    got = list(tiles.tiles_for_size(70_000))
    level0 = [t for t in got if t.level == 0]
    assert len(level0) == 274 and sum(t.width == 256 for t in level0) == 273
    assert level0[-1].width == 112
    assert [(t.level, t.width) for t in got if t.level > 0] == [(1, 256), (1, 17), (2, 1)]
    assert list(tiles.tiles_for_size(256)) == [tiles.Tile(0, 0, 256), tiles.Tile(1, 0, 1)]


@pytest.fixture(scope="module")
def big() -> tuple[Log, dict[str, bytes]]:
    log = Log("test.example/log")
    for i in range(70_000):
        log.append(logfile.entry_for(i.to_bytes(4, "big")))
    return log, log.tile_files()


class DictTiles:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def read_tile(self, tile: tiles.Tile) -> bytes:
        return self.files[tile.path]


def test_tile_hash_reader_gives_the_same_proofs(big: tuple[Log, dict[str, bytes]]) -> None:
    log, files = big
    reader = tiles.TileHashReader(log.size, log.hashes.root(), DictTiles(files))
    for i in (0, 1, 255, 256, 65_535, 65_536, 69_999):
        assert tree.inclusion_proof(reader, log.size, i) == log.inclusion(i)
    for m in (1, 256, 1000, 65_536, 69_999):
        assert tree.consistency_proof(reader, m, log.size) == log.consistency(m)
    assert tree.tree_root(reader, log.size) == log.hashes.root()


@pytest.mark.parametrize("victim", ["tile/0/100", "tile/0/273.p/112", "tile/1/000",
                                    "tile/2/000.p/1"])
def test_a_tampered_tile_is_refused_before_use(big: tuple[Log, dict[str, bytes]],
                                               victim: str) -> None:
    log, files = big
    bad = dict(files)
    bad[victim] = bytes([files[victim][0] ^ 1]) + files[victim][1:]
    reader = tiles.TileHashReader(log.size, log.hashes.root(), DictTiles(bad))
    with pytest.raises(tiles.TileMismatch) as info:
        tree.inclusion_proof(reader, log.size, 100 * 256 + 5)
    assert info.value.exit_code == 1


def test_tiles_of_a_growing_log_only_add_files(big: tuple[Log, dict[str, bytes]]) -> None:
    log, files = big
    older = Log("test.example/log")
    for e in log.entries[:1000]:
        older.append(e)
    first = older.tile_files()
    grown = log.tile_files(1000)
    assert set(first) & set(grown) == set()
    assert set(files) <= set(first) | set(grown)


def test_entry_bundles_are_strict() -> None:
    bundle = tiles.entry_bundle([b"a" * 32, b"b" * 32])
    assert tiles.parse_entry_bundle(bundle, 2, "b") == [b"a" * 32, b"b" * 32]
    for bad, width in ((bundle, 3), (bundle[:-1], 2), (b"\x00\x21" + b"a" * 33, 1),
                       (bundle + b"\x00", 2)):
        with pytest.raises(BadInput):
            tiles.parse_entry_bundle(bad, width, "b")


def test_log_directory_round_trip_and_tampering(tmp_path: Path,
                                                keys: dict[str, MemoryKey]) -> None:
    log = Log("test.example/log")
    for i in range(300):
        log.append(logfile.entry_for(b"%d" % i))
    signer = logfile.log_signer(log.origin, keys["log"], lambda: CLOCK)
    logfile.write_directory(tmp_path / "log", log, log.sign([signer]))
    loaded, opened = logfile.load(tmp_path / "log", keys["log"].key)
    assert loaded.entries == log.entries and opened.verified[0].name == log.origin
    with pytest.raises(VerificationFailed):
        logfile.load(tmp_path / "log", keys["w1"].key)  # not the log's key
    entries = tmp_path / "log" / "tile" / "entries" / "000"
    data = entries.read_bytes()
    entries.chmod(0o644)
    entries.write_bytes(data[:2] + b"\x00" * 32 + data[34:])
    with pytest.raises(tiles.TileMismatch):
        logfile.load(tmp_path / "log", keys["log"].key)


# ------------------------------------------------------------------------------- notes


class FixedVerifier:
    def __init__(self, name: str, key_id: int, ok: bool) -> None:
        self.name, self.key_id, self.ok = name, key_id, ok

    def verify(self, message: bytes, signature: bytes) -> bool:
        return self.ok


class FixedSigner:
    def __init__(self, name: str, key_id: int) -> None:
        self.name, self.key_id = name, key_id

    def sign(self, message: bytes) -> bytes:
        return hashlib.sha256(message).digest()


TEXT = "example.com/log\n5\n" + base64.b64encode(b"r" * 32).decode() + "\n"


def test_note_round_trip_known_and_unknown_signatures() -> None:
    signed = note.sign(TEXT, [FixedSigner("a.example", 1), FixedSigner("b.example", 2)])
    opened = note.open_note(signed, [FixedVerifier("a.example", 1, True)], "n")
    assert opened.text == TEXT
    assert [s.name for s in opened.verified] == ["a.example"]
    assert [(s.name, s.key_id) for s in opened.unverified] == [("b.example", 2)]
    with pytest.raises(note.InvalidSignature):
        note.open_note(signed, [FixedVerifier("a.example", 1, False)], "n")
    with pytest.raises(note.UnverifiedNote):
        note.open_note(signed, [FixedVerifier("a.example", 9, True)], "n")  # same name, other id


def test_key_id_is_the_signed_note_recommendation() -> None:
    want = hashlib.sha256(b"w.example\n\x06" + b"k" * 4).digest()[:4]
    assert note.key_id("w.example", 6, b"k" * 4) == int.from_bytes(want, "big")


SIG = "\u2014 a.example " + base64.b64encode(b"\x00\x00\x00\x01sig").decode() + "\n"


@pytest.mark.parametrize(("data", "message"), [
    (TEXT.encode() + SIG.encode(), "no signature block"),
    ((TEXT + "\n").encode(), "no signatures"),
    ((TEXT + "\n" + SIG).encode()[:-1], "newline"),
    ((TEXT + "\n" + SIG.replace("\u2014", "-")).encode(), "em dash"),
    ((TEXT + "\n" + SIG.replace("a.example", "a+b")).encode(), "'+'"),
    ((TEXT + "\n" + SIG.replace("a.example", "a\u202eb")).encode(), "unprintable"),
    ((TEXT + "\n" + SIG.replace("AAAA", "AA!A")).encode(), "base64"),
    ((TEXT + "\n" + SIG.replace("Zw==", "Zx==")).encode(), "canonical"),
    ((TEXT + "\n\u2014 a.example AAAA\n").encode(), "shorter"),
    ((TEXT + "\x01\n" + SIG).encode(), "control"),
    (b"\xff" + (TEXT + "\n" + SIG).encode(), "UTF-8"),
    ((TEXT + "\n" + SIG * 65).encode(), "more than 64"),
    (b"x" * (note.MAX_NOTE_BYTES + 1), "larger"),
    (("x" * (note.MAX_TEXT_BYTES + 1) + "\n\n" + SIG).encode(), "text is larger"),
])
def test_malformed_notes_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(BadInput, match=re.escape(message)):
        note.open_note(data, [FixedVerifier("a.example", 1, True)], "n")


# ------------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip_with_extensions() -> None:
    cp = Checkpoint("example.com/log", 20852163, b"\x0a" * 32, ("ext one", "ext two"))
    assert checkpoint.parse(cp.format(), "c") == cp
    assert checkpoint.parse(TEXT, "c") == Checkpoint("example.com/log", 5, b"r" * 32)


ROOT64 = base64.b64encode(b"r" * 32).decode()


@pytest.mark.parametrize(("text", "message"), [
    (f"o\n05\n{ROOT64}\n", "leading zero"),
    (f"o\n-1\n{ROOT64}\n", "decimal"),
    (f"o\n+1\n{ROOT64}\n", "decimal"),
    (f"o\n\uff11\n{ROOT64}\n", "decimal"),
    (f"o\n{2**63}\n{ROOT64}\n", "above"),
    (f"o\n{'9' * 20}\n{ROOT64}\n", "decimal"),
    ("o\n1\nnot base64!\n", "base64"),
    (f"o\n1\n{base64.b64encode(b'r' * 31).decode()}\n", "32 bytes"),
    (f"o\n1\n{ROOT64[:-2]}J=\n", "canonical"),
    (f"o\n1\n{ROOT64}", "newline"),
    (f"o\n1\n{ROOT64}\n\nx\n", "empty"),
    (f"o\n1\n{ROOT64}\n{'x' * 1025}\n", "longer than"),
    (f"o\n1\n{ROOT64}\n" + "e\n" * 17, "extension lines"),
    (f"\n1\n{ROOT64}\n", "empty"),
    (f"a b\n1\n{ROOT64}\n", "spaces"),
    ("o\n1\n", "needs"),
])
def test_malformed_checkpoints_are_refused(text: str, message: str) -> None:
    with pytest.raises(BadInput, match=re.escape(message)):
        checkpoint.parse(text, "c")


# ------------------------------------------------------------------------------- cosignatures


def test_cosigned_message_is_the_c2sp_structure() -> None:
    msg = cosignature.cosigned_message("w.example", 1679315147, "example.com/log", 0, 5,
                                       b"r" * 32)
    assert msg == (b"subtree/v1\n\x00" + b"\x09w.example" + (1679315147).to_bytes(8, "big")
                   + b"\x0fexample.com/log" + bytes(8) + (5).to_bytes(8, "big") + b"r" * 32)


def test_cosignature_signs_verifies_and_binds_every_field(keys: dict[str, MemoryKey]) -> None:
    signer = cosignature.CosignatureSigner("w1.example", keys["w1"], lambda: CLOCK)
    verifier = cosignature.CosignatureVerifier("w1.example", keys["w1"].key)
    assert signer.key_id == verifier.key_id
    sig = signer.sign(TEXT.encode())
    assert len(sig) == 8 + 2420 and int.from_bytes(sig[:8], "big") == CLOCK
    assert verifier.verify(TEXT.encode(), sig)
    later = (CLOCK + 1).to_bytes(8, "big") + sig[8:]
    assert not verifier.verify(TEXT.encode(), later)
    assert not verifier.verify(TEXT.replace("\n5\n", "\n6\n").encode(), sig)
    assert not cosignature.CosignatureVerifier("w2.example", keys["w1"].key).verify(
        TEXT.encode(), sig)  # ML-DSA-44 cosignatures commit to the cosigner's name
    assert not verifier.verify(TEXT.encode(), sig[:-1])
    # extension lines are not signed by the ML-DSA-44 type (C2SP)
    assert verifier.verify((TEXT + "ext\n").encode(), sig)


def test_vkeys_round_trip_and_are_checked(keys: dict[str, MemoryKey]) -> None:
    vkey = cosignature.vkey("w1.example", keys["w1"].key)
    assert cosignature.parse_vkey(vkey, "v") == ("w1.example", keys["w1"].key)
    name, kid, blob = vkey.split("+", 2)
    raw = base64.b64decode(blob)
    ed25519_type = base64.b64encode(bytes([4]) + raw[1:]).decode()
    short = base64.b64encode(raw[:-1]).decode()
    for bad in (f"{name}+{int(kid, 16) ^ 1:08x}+{blob}", f"{name}+{kid}+{ed25519_type}",
                f"{name}+{kid}+{short}", "w1.example", ""):
        with pytest.raises(BadInput):
            cosignature.parse_vkey(bad, "v")


def test_cosigners_are_ml_dsa_44_only() -> None:
    from writroot.crypto.algorithms import ML_DSA_65
    from writroot.crypto.keys import PublicKey

    with pytest.raises(BadInput):
        cosignature.CosignatureVerifier("w.example", PublicKey(ML_DSA_65, b"k" * 1952))


# ------------------------------------------------------------------------------- tlog-proof


def test_tlog_proof_round_trip_and_hostile_files(small: tree.MemoryTree) -> None:
    signed = note.sign(TEXT, [FixedSigner("a.example", 1)])
    p = proof.Proof(3, tuple(tree.inclusion_proof(small, 5, 3)), signed, b"extra data")
    assert proof.parse(p.format(), "p") == p
    plain = proof.Proof(0, (), signed)
    assert proof.parse(plain.format(), "p") == plain
    text = p.format()
    for bad in (text.replace(b"@v1", b"@v2"), text.replace(b"index 3", b"index 03"),
                text.replace(b"index 3", b"index -3"), text.replace(b"index 3\n", b""),
                text.replace(b"extra ", b"extra !"), text.split(b"\n\n")[0],
                text.replace(b"index 3\n", b"index 3\n" + b"AAAA\n"),
                text.replace(b"index 3\n", b"index 3\n" + b"A" * 44 + b"\n" * 1) + b"x",
                b"c2sp.org/tlog-proof@v1\nindex 1\n" + b"A" * 43 + b"=\n" * 1 * 64 + b"\n"
                + signed):
        with pytest.raises(BadInput):
            proof.parse(bad, "p")


# ------------------------------------------------------------------------------- witness


def _cp(t: tree.MemoryTree, n: int) -> tuple[Checkpoint, bytes]:
    cp = Checkpoint("example.com/log", n, t.root(n))
    return cp, note.sign(cp.format(), [FixedSigner("example.com/log", 1)])


def test_witness_advances_only_along_one_history(small: tree.MemoryTree) -> None:
    fork = tree.MemoryTree()
    fork.extend([*LEAVES[:20], *(tree.leaf_hash(b"f%d" % i) for i in range(50))])
    state = witness.WitnessState("w.example", "")
    first = witness.advance(state, *_cp(small, 20), [], CLOCK)
    assert isinstance(first, witness.Accepted) and not first.same
    state = first.state
    again = witness.advance(state, *_cp(small, 20), [], CLOCK + 1)
    assert isinstance(again, witness.Accepted) and again.same
    grown = witness.advance(state, *_cp(small, 50), tree.consistency_proof(small, 20, 50),
                            CLOCK + 2)
    assert isinstance(grown, witness.Accepted)
    state = grown.state
    assert state.heads["example.com/log"].checkpoint.size == 50
    rollback = witness.advance(state, *_cp(small, 30), [], CLOCK)
    split = witness.advance(state, *_cp(fork, 50), [], CLOCK)
    forked = witness.advance(state, *_cp(fork, 70), tree.consistency_proof(fork, 50, 70), CLOCK)
    bad_proof = witness.advance(state, *_cp(small, 70), [], CLOCK)
    for result, kind in ((rollback, "rollback"), (split, "split-view"),
                         (forked, "inconsistent"), (bad_proof, "inconsistent")):
        assert isinstance(result, witness.Conflict) and result.kind == kind
        assert result.known.signed == _cp(small, 50)[1]
    assert state.heads["example.com/log"].checkpoint.size == 50  # refusals change nothing


def test_witness_state_round_trips_and_is_strict(small: tree.MemoryTree,
                                                 keys: dict[str, MemoryKey]) -> None:
    vkey = cosignature.vkey("w.example", keys["w1"].key)
    state = witness.advance(witness.WitnessState("w.example", vkey), *_cp(small, 20), [],
                            CLOCK)
    assert isinstance(state, witness.Accepted)
    obj = witness.state_to_json(state.state)
    assert witness.state_from_json(obj, "s") == state.state
    log = obj["logs"]["example.com/log"]
    for mutate in (lambda o: o.update(extra=1), lambda o: o.update(version=2),
                   lambda o: o.update(witness="other.example"),
                   lambda o: log.update(size=21), lambda o: log.update(cosigned_at=-1),
                   lambda o: log.update(cosigned_at=2**63), lambda o: log.update(size=True),
                   lambda o: log.update(checkpoint="garbage"), lambda o: log.pop("root")):
        bad: Any = witness.state_to_json(state.state)
        log = bad["logs"]["example.com/log"]
        mutate(bad)
        with pytest.raises(BadInput):
            witness.state_from_json(bad, "s")


def test_the_example_in_docs_format_md_verifies() -> None:
    """docs/format.md §10 shows real bytes: its cosigned checkpoint opens under its vkeys, its
    proof's path leads from entry 3 to the checkpoint's root."""
    import re

    doc = (Path(__file__).parent.parent / "docs" / "format.md").read_text(encoding="utf-8")
    section = doc.split("## 10. Transparency log", 1)[1]
    vkeys = re.findall(r"^  (\S+\+[0-9a-f]{8}\+\S+)$", section, re.M)
    signed = next(b for b in re.findall(r"```\n(fleet\.writsov\.example/log\n5\n.*?)```",
                                        section, re.S) if "\u2014" in b)
    verifiers = [cosignature.CosignatureVerifier(*cosignature.parse_vkey(v, "doc"))
                 for v in vkeys]
    opened = note.open_note(signed.encode(), verifiers, "docs/format.md")
    assert len(opened.verified) == 2
    head = re.search(r"```\n(c2sp\.org/tlog-proof@v1\n.*?)```", section, re.S)
    assert head is not None
    parsed = proof.parse(head[1].encode() + b"\n" + signed.encode(), "docs/format.md")
    cp = checkpoint.parse(opened.text, "docs/format.md")
    entry = hashlib.sha256(b"payload 3").digest()
    assert parsed.extra == entry
    assert tree.check_inclusion(parsed.path, cp.size, parsed.index, tree.leaf_hash(entry),
                                cp.root)
