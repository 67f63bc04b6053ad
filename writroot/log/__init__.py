"""Transparency logs (DESIGN §6a), one C2SP specification per small module.

tree.py         RFC 9162 hashes, inclusion and consistency proofs (as x/mod sumdb/tlog)
tiles.py        c2sp.org/tlog-tiles: tile paths, entry bundles, a checked tile hash reader
note.py         c2sp.org/signed-note
checkpoint.py   c2sp.org/tlog-checkpoint
cosignature.py  c2sp.org/tlog-cosignature, ML-DSA-44 (type 0x06): witnesses and the log itself
proof.py        c2sp.org/tlog-proof
witness.py      a witness's state and its decision (advance or refuse with evidence)
logfile.py      a log held as files: its entries, tiles, signed checkpoints and proof files
verifycheck.py  what a verifier concludes: log-signed, log-witnessed, log-included, conflict-log

Where writroot goes beyond these specifications: docs/format.md, "Transparency log".
"""
