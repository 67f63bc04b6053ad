"""The demo's witnesses (DESIGN §6a): two regions and an auditor, each with an ML-DSA-44 key
held in memory and a witness state, cosigning every checkpoint of the fleet's and each
region's log as
`writroot witness cosign` does, and refusing a forked one with evidence."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from writroot.errors import BadInput
from writroot.log import checkpoint as cpmod
from writroot.log import cosignature, note, tiles, tree
from writroot.log.logfile import MemoryKey
from writroot.log.witness import Conflict, WitnessState, advance, evidence_to_json
from writroot.verify.logs import LOGS_DIR, UnionTileReader

WITNESSES = ("conus.writsov.example/witness", "eucom.writsov.example/witness",
             "auditor.writsov.example/witness")
QUORUM = 2


@dataclass
class Witnesses:
    keys: dict[str, MemoryKey] = field(default_factory=dict)
    states: dict[str, WitnessState] = field(default_factory=dict)
    cosigned: dict[str, int] = field(default_factory=dict)  # origin -> checkpoints cosigned

    def __post_init__(self) -> None:
        for name in WITNESSES:
            self.keys[name] = MemoryKey.generate()
            self.states[name] = WitnessState(name, cosignature.vkey(name,
                                                                    self.keys[name].key))

    def policy_op(self) -> str:
        """The genesis plan's sign-witness-policy operation."""
        lines = "".join(f"      - name: {n}\n        vkey: '{self.states[n].vkey}'\n"
                        for n in WITNESSES)
        return (f"  - op: sign-witness-policy\n    witnesses:\n{lines}    quorum: {QUORUM}\n"
                "    logging: required\n    validity_days: 548\n")

    def show(self, name: str, signed: bytes, tile_dirs: list[Path],
             now: int) -> bytes | Conflict:
        """One witness is shown a checkpoint (its log signature checked by the caller): the
        note with its cosignature added, or its refusal."""
        text, sigs = note.split(signed, "checkpoint")
        cp = cpmod.parse(text, "checkpoint")
        known = self.states[name].heads.get(cp.origin)
        old = known.checkpoint.size if known else 0
        proof: list[bytes] = []
        if 0 < old < cp.size:
            reader = tiles.TileHashReader(cp.size, cp.root, UnionTileReader(tile_dirs))
            proof = tree.consistency_proof(reader, old, cp.size)
        result = advance(self.states[name], cp, signed, proof, now)
        if isinstance(result, Conflict):
            return result
        self.states[name] = result.state
        signer = cosignature.CosignatureSigner(name, self.keys[name], lambda: now)
        return note.sign(text, [signer], sigs)

    def cosign_all(self, signed: bytes, tile_dirs: list[Path], now: int) -> bytes:
        """Every witness cosigns (the demo's logs never fork unless shown a fork)."""
        origin = cpmod.parse(note.split(signed, "checkpoint")[0], "checkpoint").origin
        for name in WITNESSES:
            out = self.show(name, signed, tile_dirs, now)
            if isinstance(out, Conflict):
                raise BadInput(f"{name} refused the log's checkpoint: {out.message}", name)
            signed = out
        self.cosigned[origin] = self.cosigned.get(origin, 0) + 1
        return signed

    def refuse(self, name: str, signed: bytes, tile_dirs: list[Path], now: int,
               evidence: Path) -> Conflict:
        """Show a witness a checkpoint it must refuse; write its evidence."""
        from writroot.outputs import write_once

        out = self.show(name, signed, tile_dirs, now)
        if not isinstance(out, Conflict):
            raise BadInput(f"{name} cosigned a forked checkpoint", name)
        write_once(evidence, (json.dumps(evidence_to_json(out, name, now), indent=2,
                                         sort_keys=True) + "\n").encode())
        return out


def log_dirs(root: Path, origin: str) -> list[Path]:
    """Every copy of one log's directory below `root` (ceremony outputs)."""
    return sorted(p.parent for p in root.rglob("checkpoint")
                  if p.parent.as_posix().endswith(f"{LOGS_DIR}/{origin}"))
