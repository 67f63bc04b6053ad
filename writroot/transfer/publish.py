"""`writroot publish`: the distribution set and the audit package, built from ceremony outputs.

The distribution set is what relying parties get: every artifact (less those a revocation list
revokes that the trust engine verified against the pinned anchor: nothing of a withheld
statement ships, neither its envelope nor its SPIFFE bundle nor its key's PEM), each
ceremony's record named after the ceremony, the public-key PEMs, the bare SPIFFE bundles, and
the OSCAL documents *with* the catalogs and profiles they name, under the names their hrefs
use. Every `--ceremony-dir` given is used: OSCAL sources are looked up in each (the one whose
file has the pinned digest), and the binder is gathered from all of them. Never a sealed key;
never a transcript (host facts) unless asked. The audit package (a transfer bundle of kind
`audit-package`) holds the distribution set, each ceremony's locked plan, transcript and
record, and the ceremony binder: approvals, enrolments, key requests and every transfer bundle
with its manifest digest and read-aloud words. See docs/auditor.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from writroot.errors import BadInput, VerificationFailed
from writroot.jsonio import canonical, loads_strict, read_capped
from writroot.transfer import rules
from writroot.transfer.manifest import Manifest

if TYPE_CHECKING:
    from writroot.verify.core import Anchor

PACKAGE_KIND = "audit-package"
PACKAGE_INDEX = "package.json"
PACKAGE_FORMAT = "writroot-audit-package/1"
DIST = "distribution"
BINDER_TYPES = ("approval", "enrolment", "key-request")
#: Locked-plan fields of the OSCAL operations that pin a file beside the plan.
OSCAL_FIELDS = ("document", "profile", "baseline_document")
MAX_INPUT_BYTES = 16 * 1024 * 1024


@dataclass
class Published:
    """What `publish` writes: the distribution set and, for the package, everything else."""

    dist: dict[str, bytes] = field(default_factory=dict)
    package: dict[str, bytes] = field(default_factory=dict)
    ceremonies: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)  # signed OSCAL documents (dist paths)
    withheld: list[dict[str, str]] = field(default_factory=list)
    transfers: list[dict[str, Any]] = field(default_factory=list)

    def put(self, files: dict[str, bytes], rel: str, data: bytes, where: str) -> None:
        rules.check_path(rel, where)
        seen = files.get(rel)
        if seen is not None and seen != data:
            raise BadInput(f"two different files would be published as {rel}", where)
        files[rel] = data

    def index(self) -> bytes:
        return canonical({"format": PACKAGE_FORMAT, "ceremonies": self.ceremonies,
                          "subjects": [f"{DIST}/{s}" for s in self.subjects],
                          "transfers": self.transfers, "withheld": self.withheld}) + b"\n"


def _read(path: Path) -> bytes:
    if path.is_symlink() or not path.is_file():
        raise BadInput("not a regular file (links are not followed)", str(path))
    return read_capped(path, MAX_INPUT_BYTES)


def _statement(data: bytes, where: str) -> Any:
    from writroot.envelope import Envelope
    from writroot.statements import parse_any

    envelope = Envelope.parse(data, where)
    return parse_any(envelope.payload_type, envelope.payload, f"{where}: payload")


def _revoked_targets(runs: list[Path], anchor: Anchor, at: datetime) -> set[str]:
    """What the revocation lists among the runs' artifacts revoke, on the word only of lists
    the trust engine verified from the pinned anchor (writroot.verify.trust.establish)."""
    from writroot.verify.core import parse_artifact
    from writroot.verify.trust import establish

    parsed = [parse_artifact(str(path), _read(path)) for run in runs
              for path in sorted((run / "artifacts").glob("*.dsse.json"))]
    if not any(p.statement is not None and p.statement.type == "revocation-list"
               for p in parsed):
        return set()
    return set(establish(anchor, parsed, at).revocations)


def _withheld_by(st: Any, targets: set[str]) -> str | None:
    mine = [f"serial:{st.serial}"]
    if "key" in st.subject:
        mine.append(f"keyid:{st.subject['key'].keyid}")
    return next((t for t in mine if t in targets), None)


def _run(out: Published, run: Path, targets: set[str], ceremony_dirs: list[Path],
         with_transcripts: bool) -> None:
    where = str(run)
    for need in ("plan.lock.json", "ceremony-record.dsse.json", "transcript.jsonl"):
        if not (run / need).is_file():
            raise BadInput(f"no {need}: not a ceremony output directory", where)
    lock = loads_strict(_read(run / "plan.lock.json"), f"{run}/plan.lock.json")
    name = lock.get("ceremony") if isinstance(lock, dict) else None
    if not isinstance(name, str) or name in out.ceremonies:
        raise BadInput("plan.lock.json names no ceremony, or one published already",
                       f"{run}/plan.lock.json: ceremony")
    rules.check_path(name, f"{run}/plan.lock.json: ceremony")
    out.ceremonies.append(name)
    withheld_keys: set[str] = set()  # keyids of withheld statements' keys: no PEM ships
    withheld_domains: set[str] = set()  # trust domains of withheld bundles: no bundle ships
    kept_domains: set[str] = set()
    for path in sorted((run / "artifacts").glob("*.dsse.json")):
        data = _read(path)
        st = _statement(data, str(path))
        target = _withheld_by(st, targets)
        domain = st.subject.get("trust_domain") if st.type == "enclave-bundle" else None
        if target is not None:
            out.withheld.append({"artifact": path.name, "ceremony": name, "revoked": target})
            if "key" in st.subject:
                withheld_keys.add(st.subject["key"].keyid)
            if domain:
                withheld_domains.add(str(domain))
            continue
        if domain:
            kept_domains.add(str(domain))
        out.put(out.dist, f"artifacts/{path.name}", data, str(path))
    record = _read(run / "ceremony-record.dsse.json")
    out.put(out.dist, f"records/{name}.ceremony-record.dsse.json", record, where)
    transcript = _read(run / "transcript.jsonl")
    if with_transcripts:
        out.put(out.dist, f"transcripts/{name}.transcript.jsonl", transcript, where)
    for pem in sorted(run.glob("*.pem")):
        rel = "fleet-root.pem" if pem.name == "fleet-root.pem" else f"keys/{pem.name}"
        data = _read(pem)
        if _pem_keyid(data, str(pem)) in withheld_keys or \
                f"keyid:{_pem_keyid(data, str(pem))}" in targets:
            continue
        out.put(out.dist, rel, data, str(pem))
    for bundle in sorted(run.glob("bundles/*.spiffe.json")):
        domain = bundle.name.removesuffix(".spiffe.json")
        if domain in withheld_domains and domain not in kept_domains:
            continue
        out.put(out.dist, f"spire/{name}/{bundle.name}", _read(bundle), str(bundle))
    _oscal(out, lock, run, ceremony_dirs)
    _logs(out, run)
    for rel, data in (("plan.lock.json", _read(run / "plan.lock.json")),
                      ("transcript.jsonl", transcript),
                      ("ceremony-record.dsse.json", record)):
        out.put(out.package, f"ceremonies/{name}/{rel}", data, where)


def _pem_keyid(data: bytes, where: str) -> str:
    from writroot.crypto.keys import PublicKey

    return PublicKey.from_pem(data, where).keyid


def _logs(out: Published, run: Path) -> None:
    """The run's log files (docs/format.md §10.10): tiles never change once written, so two
    runs' copies of one path must agree; of a log's checkpoints the largest is kept (two of
    one size that differ are a fork: refused)."""
    from writroot.log import checkpoint, note

    for path in sorted((run / "logs").rglob("*")) + sorted((run / "proofs").glob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        rel = path.relative_to(run).as_posix()
        data = _read(path)
        if path.name != "checkpoint" or rel not in out.dist:
            out.put(out.dist, rel, data, str(path))
            continue
        sizes = []
        for blob in (out.dist[rel], data):
            text, _ = note.split(blob, str(path))
            sizes.append(checkpoint.parse(text, str(path)).size)
        if sizes[1] > sizes[0]:
            out.dist[rel] = data
        elif sizes[1] == sizes[0]:
            out.put(out.dist, rel, data, str(path))  # the same, or a fork: refused


def add_returns(out: Published, paths: list[Path]) -> list[str]:
    """What came back from the witnesses: cosigned checkpoints (their cosignatures join the
    published checkpoint of the same tree, or are kept under cosignatures/) and evidence
    files (kept under evidence/). Each is read strictly; returns what was added."""
    from writroot.log import checkpoint, note
    from writroot.log.witness import EVIDENCE_TYPE

    files: list[Path] = []
    for p in paths:
        files += sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    added = []
    for f in files:
        data = _read(f)
        if data.lstrip().startswith(b"{"):
            obj = loads_strict(data, str(f))
            if not isinstance(obj, dict) or obj.get("type") != EVIDENCE_TYPE:
                raise BadInput(f"not a cosigned checkpoint or a {EVIDENCE_TYPE} file", str(f))
            rel = f"evidence/{hashlib.sha256(data).hexdigest()[:16]}.evidence.json"
            out.put(out.dist, rel, data, str(f))
            added.append(rel)
            continue
        text, sigs = note.split(data, str(f))
        cp = checkpoint.parse(text, str(f))
        rel = f"logs/{cp.origin}/checkpoint"
        rules.check_path(rel, str(f))
        mine = out.dist.get(rel)
        if mine is not None and note.split(mine, rel)[0] == text:
            have = note.split(mine, rel)[1]
            new = [s for s in sigs if s not in have]
            out.dist[rel] = note.sign(text, [], [*have, *new])
        else:
            rel = (f"cosignatures/{cp.origin.replace('/', '_')}-{cp.size}-"
                   f"{hashlib.sha256(data).hexdigest()[:16]}.checkpoint")
            out.put(out.dist, rel, data, str(f))
        added.append(rel)
    return added


def pinned_files(lock: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, {path, sha256}) of every file an OSCAL operation of a locked plan pins."""
    found: list[tuple[str, dict[str, Any]]] = []
    for i, op in enumerate(lock.get("operations") or []):
        if not isinstance(op, dict) or not str(op.get("op", "")).startswith("sign-oscal-"):
            continue
        for key in OSCAL_FIELDS:
            if isinstance(op.get(key), dict):
                found.append((f"operations[{i}].{key}", op[key]))
        for j, src in enumerate(op.get("sources") or []):
            if isinstance(src, dict):
                found.append((f"operations[{i}].sources[{j}]", src))
    return found


def _oscal(out: Published, lock: dict[str, Any], run: Path, ceremony_dirs: list[Path]) -> None:
    """OSCAL documents and the catalogs/profiles they name, under their own file names, each
    checked against the digest the locked plan pinned (in the first ceremony directory that
    holds the file with that digest)."""
    pinned = pinned_files(lock)
    if pinned and not ceremony_dirs:
        raise BadInput("its plan signs OSCAL documents: pass --ceremony-dir (the directory the "
                       "plan was locked in) so the catalogs they name are published too",
                       str(run))
    for where, pin in pinned:
        at = f"{run}/plan.lock.json: {where}.path"
        rel = pin.get("path")
        if not isinstance(rel, str):
            raise BadInput("expected a path", at)
        checked = rules.check_path(rel, at)
        found = [(d / checked, _read(d / checked)) for d in ceremony_dirs
                 if (d / checked).is_file()]
        if not found:
            raise BadInput("no --ceremony-dir holds this file", at)
        match = [(src, data) for src, data in found
                 if hashlib.sha256(data).hexdigest() == pin.get("sha256")]
        if not match:
            raise VerificationFailed("differs from the file the plan pinned (sha256)",
                                     str(found[0][0]))
        source, data = match[0]
        name = PurePosixPath(rel).name
        out.put(out.dist, f"oscal/{name}", data, str(source))
        if where.endswith((".document", ".profile")) and name not in out.subjects:
            out.subjects.append(f"oscal/{name}")


def _binder(out: Published, ceremony_dir: Path) -> None:
    """Approvals, enrolments and key requests under the ceremony directory, and every transfer
    bundle (.tar) there with its manifest digest and read-aloud words."""
    from writroot.transfer.bundle import read_bundle

    for path in sorted(ceremony_dir.rglob("*.dsse.json")):
        if path.is_symlink():
            continue
        data = _read(path)
        try:
            kind = _statement(data, str(path)).type
        except BadInput:
            continue  # not a writroot envelope: not part of the binder
        if kind in BINDER_TYPES:
            rel = path.relative_to(ceremony_dir).as_posix()
            out.put(out.package, f"binder/{rel}", data, str(path))
    for path in sorted(ceremony_dir.rglob("*.tar")):
        if path.is_symlink():
            continue
        try:
            manifest, files = read_bundle(path)
        except BadInput:
            continue  # a tar that is not a transfer bundle (no manifest): not in the binder
        rel = path.relative_to(ceremony_dir).as_posix()
        out.put(out.package, f"binder/{rel}", _read(path), str(path))
        out.transfers.append(_transfer(f"binder/{rel}", manifest))
        request = files.get("key-request.json")
        if request is not None:
            out.put(out.package, f"binder/{rel[:-4]}.key-request.dsse.json", request,
                    f"{path}: key-request.json")


def _transfer(rel: str, manifest: Manifest) -> dict[str, Any]:
    return {"path": rel, "kind": manifest.kind, "manifest_sha256": manifest.sha256,
            "words": manifest.words, "files": [f.path for f in manifest.files]}


def collect(runs: list[Path], ceremony_dirs: list[Path], anchor: Anchor, at: datetime,
            with_transcripts: bool = False, binder: bool = False) -> Published:
    """Everything `publish` writes, read and checked in memory first. `anchor` and `at` are
    what the revocation lists are verified against before anything is withheld."""
    if not runs:
        raise BadInput("name at least one ceremony output directory", "RUN_DIR")
    for run in runs:
        if not run.is_dir():
            raise BadInput("not a directory", str(run))
    if len({d.resolve() for d in ceremony_dirs}) != len(ceremony_dirs):
        raise BadInput("a ceremony directory is named twice", "--ceremony-dir")
    out = Published()
    targets = _revoked_targets(runs, anchor, at)
    for run in runs:
        _run(out, run, targets, ceremony_dirs, with_transcripts)
    if "fleet-root.pem" not in out.dist:
        raise BadInput("no fleet-root.pem among the ceremony outputs (publish the genesis "
                       "ceremony's output too)", "RUN_DIR")
    if binder:
        for ceremony_dir in ceremony_dirs:
            _binder(out, ceremony_dir)
    return out


def package_files(pub: Published) -> dict[str, bytes]:
    files = {f"{DIST}/{rel}": data for rel, data in pub.dist.items()}
    files.update(pub.package)
    files[PACKAGE_INDEX] = pub.index()
    return files
