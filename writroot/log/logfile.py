"""A log as its files: entries in memory, static tiles out, and a signed checkpoint.

    <dir>/checkpoint          the newest signed checkpoint (C2SP tlog-checkpoint)
    <dir>/tile/...            hash tiles and entry bundles (C2SP tlog-tiles)

Entries are 32 bytes: the SHA-256 of a signed statement's canonical payload, or of a
ceremony record. `load` reads a directory back and checks every tile against the checkpoint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from writroot.crypto.algorithms import ML_DSA_44
from writroot.crypto.keys import PublicKey
from writroot.errors import BadInput
from writroot.log import checkpoint as cpmod
from writroot.log import cosignature, note, tiles, tree
from writroot.log.checkpoint import Checkpoint

CHECKPOINT_FILE = "checkpoint"


def entry_for(payload: bytes) -> bytes:
    """The log entry of a statement: SHA-256 of its canonical payload."""
    return hashlib.sha256(payload).digest()


@dataclass
class Log:
    origin: str
    entries: list[bytes] = field(default_factory=list)
    hashes: tree.MemoryTree = field(default_factory=tree.MemoryTree)

    def __post_init__(self) -> None:
        cpmod.check_origin(self.origin, "origin")

    @property
    def size(self) -> int:
        return self.hashes.size

    def append(self, entry: bytes) -> int:
        if len(entry) != tiles.ENTRY_SIZE:
            raise BadInput("log entries are 32-byte hashes", "entry")
        self.entries.append(entry)
        return self.hashes.append(tree.leaf_hash(entry))

    def index_of(self, entry: bytes) -> int | None:
        try:
            return self.entries.index(entry)
        except ValueError:
            return None

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.origin, self.size, self.hashes.root())

    def sign(self, signers: Sequence[note.Signer]) -> bytes:
        return note.sign(self.checkpoint().format(), signers)

    def tile_files(self, old: int = 0) -> dict[str, bytes]:
        return tiles.tile_files(self.hashes, self.entries, old, self.size)

    def inclusion(self, index: int, size: int | None = None) -> list[bytes]:
        return tree.inclusion_proof(self.hashes, self.size if size is None else size, index)

    def proof_file(self, index: int, signed: bytes) -> bytes:
        """The C2SP tlog-proof of entry `index` to the signed checkpoint `signed`; its `extra`
        line carries the entry, which pairs the proof with its statement."""
        from writroot.log import proof

        text, _ = note.split(signed, "checkpoint")
        size = cpmod.parse(text, "checkpoint").size
        return proof.Proof(index, tuple(self.inclusion(index, size)), signed,
                           self.entries[index]).format()

    def consistency(self, old: int, new: int | None = None) -> list[bytes]:
        return tree.consistency_proof(self.hashes, old, self.size if new is None else new)


@dataclass
class MemoryKey:
    """An ML-DSA-44 key held in memory (tests, benches and the demo's throwaway keys)."""

    key: PublicKey
    seed: bytearray

    @classmethod
    def generate(cls) -> MemoryKey:
        from writroot.crypto.engines import signer_for

        pk, sk = signer_for(ML_DSA_44).keygen(ML_DSA_44)
        return cls(PublicKey(ML_DSA_44, pk), sk)

    def sign(self, message: bytes) -> bytes:
        from writroot.crypto.engines import signer_for

        return signer_for(ML_DSA_44).sign(ML_DSA_44, self.seed, message)


def log_signer(origin: str, raw: cosignature.RawSigner,
               clock: Callable[[], int]) -> cosignature.CosignatureSigner:
    """The log's own checkpoint signer: its key name is its origin."""
    return cosignature.CosignatureSigner(origin, raw, clock)


def write_directory(root: Path, log: Log, signed: bytes, old: int = 0) -> None:
    """Publish a new log directory (tiles and checkpoint) all at once."""
    from writroot.outputs import Publication

    with Publication(root, "log directory", need=64 * 1024) as pub:
        for path, data in log.tile_files(old).items():
            pub.write(path, data)
        pub.write(CHECKPOINT_FILE, signed)


def load(root: Path, log_key: PublicKey) -> tuple[Log, note.Note]:
    """Read a log directory: its checkpoint signed by `log_key`, every entry checked."""
    from writroot.jsonio import read_capped

    where = str(root / CHECKPOINT_FILE)
    data = read_capped(root / CHECKPOINT_FILE, note.MAX_NOTE_BYTES)
    text, _ = note.split(data, where)
    cp = cpmod.parse(text, where)
    opened = note.open_note(data, [cosignature.CosignatureVerifier(cp.origin, log_key)], where)
    reader = tiles.DirectoryTileReader(root)
    log = Log(cp.origin)
    for index in range((cp.size + tiles.WIDTH - 1) // tiles.WIDTH):
        width = tiles.tile_width(cp.size, 0, index)
        tile = tiles.Tile(tiles.DATA, index, width)
        for entry in tiles.parse_entry_bundle(reader.read_tile(tile), width,
                                              str(root / tile.path)):
            log.append(entry)
    if log.hashes.root() != cp.root:
        raise tiles.TileMismatch("the log's entries do not hash to its checkpoint", where)
    return log, opened
