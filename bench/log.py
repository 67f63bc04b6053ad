"""Section: log. Transparency-log scale (issue 21, item 10): append 10,000 entries and sign a
checkpoint; verify 100,000 inclusion proofs against one checkpoint on one core; write a
1,000,000-entry log as C2SP tiles and measure it on disk. Also `python -m bench.log`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

from bench import Row
from writroot.log import checkpoint, cosignature, logfile, note, tree
from writroot.log.logfile import Log, MemoryKey

SECTION = "log"
APPEND = 10_000
APPEND_TARGET_S = 2.0
PROOFS = 100_000
PROOFS_TARGET_S = 10.0
BATCH = 10_000  # proofs made (untimed) and checked (timed) per batch, to bound memory
BIG = 1_000_000
ORIGIN = "bench.writroot.example/log"


def _entries(n: int, salt: bytes = b"") -> list[bytes]:
    return [hashlib.sha256(salt + i.to_bytes(8, "big")).digest() for i in range(n)]


def append_and_sign(key: MemoryKey) -> float:
    entries = _entries(APPEND)
    start = time.perf_counter()
    log = Log(ORIGIN)
    for e in entries:
        log.append(e)
    log.sign([logfile.log_signer(ORIGIN, key, lambda: 1_800_000_000)])
    return time.perf_counter() - start


def verify_proofs(key: MemoryKey, log: Log) -> float:
    """The checkpoint's signature once, then PROOFS inclusion proofs against its root."""
    signed = log.sign([logfile.log_signer(ORIGIN, key, lambda: 1_800_000_000)])
    step = max(1, log.size // PROOFS)
    indexes = [(i * step) % log.size for i in range(PROOFS)]
    took = 0.0
    start = time.perf_counter()
    opened = note.open_note(signed, [cosignature.CosignatureVerifier(ORIGIN, key.key)], "cp")
    cp = checkpoint.parse(opened.text, "cp")
    took += time.perf_counter() - start
    for at in range(0, PROOFS, BATCH):
        batch = [(i, tree.leaf_hash(log.entries[i]), log.inclusion(i, cp.size))
                 for i in indexes[at:at + BATCH]]
        start = time.perf_counter()
        for i, leaf, path in batch:
            if not tree.check_inclusion(path, cp.size, i, leaf, cp.root):
                raise AssertionError(f"proof {i} did not verify")
        took += time.perf_counter() - start
    return took


def _disk(root: Path) -> tuple[int, int, int, int]:
    """(files, bytes of hash tiles, bytes of entry bundles, bytes allocated on disk)."""
    files = hashes = bundles = blocks = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            st = os.stat(path)
            files, blocks = files + 1, blocks + st.st_blocks * 512
            if "/tile/entries/" in path:
                bundles += st.st_size
            elif "/tile/" in path:
                hashes += st.st_size
    return files, hashes, bundles, blocks


def big_log(key: MemoryKey) -> tuple[float, float, tuple[int, int, int, int]]:
    entries = _entries(BIG, b"big")
    start = time.perf_counter()
    log = Log(ORIGIN)
    for e in entries:
        log.append(e)
    built = time.perf_counter() - start
    signed = log.sign([logfile.log_signer(ORIGIN, key, lambda: 1_800_000_000)])
    with tempfile.TemporaryDirectory(prefix="writroot-bench-log-") as tmp:
        start = time.perf_counter()
        logfile.write_directory(Path(tmp) / "log", log, signed)
        written = time.perf_counter() - start
        return built, written, _disk(Path(tmp) / "log")


def run() -> list[Row]:
    key = MemoryKey.generate()
    rows = [Row(SECTION, f"append {APPEND:,} entries and sign a checkpoint (ML-DSA-44)",
                append_and_sign(key), "s", APPEND_TARGET_S)]
    log = Log(ORIGIN)
    for e in _entries(BIG // 10, b"proofs"):
        log.append(e)
    rows.append(Row(SECTION, f"verify {PROOFS:,} inclusion proofs in a {log.size:,}-entry log "
                    "(one core)", verify_proofs(key, log), "s", PROOFS_TARGET_S,
                    note="checkpoint signature checked once; proofs made untimed"))
    built, written, (files, hashes, bundles, blocks) = big_log(key)
    mib = 1024 * 1024
    rows += [
        Row(SECTION, f"build a {BIG:,}-entry tree in memory", built, "s"),
        Row(SECTION, f"write it as C2SP tiles ({files:,} files, each fsynced)", written, "s",
            note="one staged publish; a ceremony's append writes a few tiles"),
        Row(SECTION, "its hash tiles (tile/<L>/...)", hashes / mib, "MiB",
            note="32 B per entry at level 0, ~1/256 of that above"),
        Row(SECTION, "its entry bundles (tile/entries/...)", bundles / mib, "MiB",
            note="2-byte length + 32-byte entry each"),
        Row(SECTION, "space on disk (allocated blocks)", blocks / mib, "MiB"),
    ]
    return rows


if __name__ == "__main__":
    import json
    import sys

    out = run()
    if "--json" in sys.argv:
        print(json.dumps([r.to_json() for r in out], indent=2))
    else:
        for r in out:
            print(f"{r.what}: {r.value:.4g} {r.unit} {r.target_text} {r.status}")
