"""`python -m bench.ab DIR TREE...`: the verify core and the 10,011-artifact audit of several
source trees, side by side on one set of artifacts, with CPU time as well as wall time.

    git archive <base> | tar -x -C /tmp/base
    python -m bench.ab /tmp/ab-set /tmp/base . --rounds 2 --json

The sets (`bench/throughput.py` `build_artifacts`, `bench/scale.py` `build_audit`) are built
once into DIR (kept: a later run reuses them), then each tree is measured in turn, round by
round, in fresh processes with that tree first on PYTHONPATH. CPU time is comparable on a
busy machine; wall time and the 1 -> 2 cores speed-up are not (say the load with them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

PASSES = 7


def build(out: Path) -> None:
    from bench import scale, throughput
    from bench.hsmtoken import throwaway_custody
    from writroot.crypto.algorithms import SLH_DSA_SHA2_256S

    (out / "set").mkdir(parents=True, exist_ok=True)
    (out / "small").mkdir(exist_ok=True)
    with throwaway_custody() as cust:
        fleet = cust.generate(SLH_DSA_SHA2_256S, role="fleet-root", label="bench-fleet-root")
        artifacts, at = throughput.build_artifacts(cust, fleet)
        for name, data in artifacts:
            (out / "small" / name).write_bytes(data)
        at_set = scale.build_audit(cust, fleet, out / "set") + timedelta(minutes=30)
        (out / "fleet-root.pem").write_text(fleet.key.pem)
    (out / "meta.json").write_text(json.dumps({"at_small": at.isoformat(),
                                               "at_set": at_set.isoformat()}))


def core(data: Path) -> dict[str, Any]:
    """Verify core against the raw signature rate, CPU time, one core (median of PASSES)."""
    from writroot.crypto import engines
    from writroot.crypto.keys import PublicKey
    from writroot.envelope import Envelope
    from writroot.verify.core import Anchor, verify

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    meta = json.loads((data / "meta.json").read_text())
    key = PublicKey.from_pem((data / "fleet-root.pem").read_bytes(), "anchor")
    anchor, at = Anchor(key.keyid, key), datetime.fromisoformat(meta["at_small"])
    artifacts = [(p.name, p.read_bytes()) for p in sorted((data / "small").iterdir())]
    if not verify(artifacts, anchor, at).ok:
        raise RuntimeError("bench artifacts do not verify")
    primary = engines.verifier_for(key.algorithm)
    work = [(e.pae(), e.signatures[0].sig) for e in
            (Envelope.parse(b, n) for n, b in artifacts)]
    spent: dict[str, list[float]] = {"core": [], "raw": []}
    for _ in range(PASSES):
        began = time.process_time()
        verify(artifacts, anchor, at)
        spent["core"].append(time.process_time() - began)
        began = time.process_time()
        for message, sig in work:
            primary.verify(key.algorithm, key.raw, message, sig)
        spent["raw"].append(time.process_time() - began)
    c, r = statistics.median(spent["core"]), statistics.median(spent["raw"])
    return {"core_per_s": round(len(artifacts) / c), "raw_per_s": round(len(artifacts) / r),
            "ratio": round(r / c, 3)}


def audit(data: Path, jobs: int) -> dict[str, Any]:
    """`writroot verify --jobs N` on the 10,011-artifact set: wall and CPU seconds."""
    from bench import scale

    meta = json.loads((data / "meta.json").read_text())
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = scale._audit(data / "fleet-root.pem", data / "set",
                          datetime.fromisoformat(meta["at_set"]), jobs)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {"jobs": jobs, "wall_s": round(result["s"], 2), "cpu_s": round(cpu, 2),
            "n": result["n"],
            "rss_mib": round(max(result["rss_kib"], result["children_kib"]) / 1024)}


def _one(tree: Path, data: Path, what: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(Path(__file__).parent
                                                                      .parent)])}
    # Run as a script: `bench` itself (scale, throughput) then comes from the tree measured.
    proc = subprocess.run([sys.executable, str(Path(__file__)), str(data), "--only", what],
                          env=env, capture_output=True, text=True, check=True)
    row: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("data", type=Path)
    parser.add_argument("trees", type=Path, nargs="*")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", choices=("core", "1", "2"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only:  # one measurement, in this process (the tree is on PYTHONPATH)
        print(json.dumps(core(args.data) if args.only == "core" else
                         audit(args.data, int(args.only))))
        return 0
    if not (args.data / "meta.json").exists():
        build(args.data)
    rows = []
    for round_ in range(1, args.rounds + 1):
        for tree in args.trees:
            for what in ("core", "1", "2"):
                load = os.getloadavg()[0]
                row = {"tree": str(tree), "round": round_, "load": round(load, 2),
                       **_one(tree.resolve(), args.data, what)}
                rows.append(row)
                if not args.json:
                    print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
