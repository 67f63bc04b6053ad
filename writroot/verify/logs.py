"""The federation's logs as files (DESIGN §6a): which log each issuer keeps, and the logs a
published set holds.

One log per issuing role, continuing across that role's key rotations:
    writroot/<fleet>/fleet              the fleet root's
    writroot/<fleet>/region/<REGION>    a regional root's
A ceremony publishes `logs/<origin>/checkpoint` and the tiles its appends added under
`logs/<origin>/tile/`; a published set is the union of such directories, anywhere below it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from writroot.crypto.keys import PublicKey
from writroot.errors import BadInput, PolicyRefused, VerificationFailed
from writroot.log import checkpoint as cpmod
from writroot.log import cosignature, note, tiles, tree
from writroot.log.checkpoint import Checkpoint
from writroot.log.logfile import CHECKPOINT_FILE, Log

if TYPE_CHECKING:
    from writroot.statements import Statement
    from writroot.verify.report import Report

LOGS_DIR = "logs"
PROOFS_DIR = "proofs"
MAX_CHECKPOINT_FILES = 4096


def fleet_origin(fleet: str) -> str:
    return f"writroot/{fleet}/fleet"


def region_origin(fleet: str, region: str) -> str:
    return f"writroot/{fleet}/region/{region}"


class UnionTileReader:
    """Tiles from several copies of one log's directory (tiles never change once written, so
    the first copy found is as good as any; each is checked against a signed root on use)."""

    def __init__(self, dirs: Sequence[Path]) -> None:
        self.dirs = list(dirs)

    def read_tile(self, tile: tiles.Tile) -> bytes:
        for d in self.dirs:
            path = d / tile.path
            if path.is_file() and not path.is_symlink():
                return tiles.DirectoryTileReader(d).read_tile(tile)
        raise BadInput(f"no copy of tile {tile.path} in the published set",
                       str(self.dirs[0]) if self.dirs else "logs/")


def checkpoint_files(root: Path) -> list[Path]:
    """Every `logs/<origin>/checkpoint` below `root`, in a stable order."""
    found = sorted(p for p in root.rglob(CHECKPOINT_FILE)
                   if p.is_file() and not p.is_symlink() and LOGS_DIR in p.parts[:-1])
    if len(found) > MAX_CHECKPOINT_FILES:
        raise BadInput(f"more than {MAX_CHECKPOINT_FILES} checkpoint files", str(root))
    return found


def origin_dir(path: Path) -> str | None:
    """The origin a `.../logs/<origin>/checkpoint` path names (None: not under logs/)."""
    parts = path.parts[:-1]
    if LOGS_DIR not in parts:
        return None
    at = len(parts) - 1 - parts[::-1].index(LOGS_DIR)
    return "/".join(parts[at + 1:]) or None


@dataclass(frozen=True)
class Published:
    """One log as a published set holds it: its entries (checked against its largest
    validly signed checkpoint) and that checkpoint."""

    origin: str
    log: Log
    signed: bytes  # b"" for a log with no checkpoint yet

    @property
    def head(self) -> tuple[int, bytes]:
        return self.log.size, self.log.hashes.root()


def _signed_by(data: bytes, verifier: cosignature.CosignatureVerifier, where: str) -> bool:
    try:
        note.open_note(data, [verifier], where)
    except (BadInput, VerificationFailed):
        return False
    return True


def read_published(root: Path | None, origin: str,
                   key: PublicKey | Sequence[PublicKey]) -> Published:
    """The log of `origin` in the published set under `root`: the largest checkpoint signed
    by `key`; every other checkpoint of that origin must be consistent with it (a fork in
    the published set is refused, exit 1). No checkpoint at all: the empty log."""
    if root is None:
        return Published(origin, Log(origin), b"")
    heads: list[tuple[Checkpoint, bytes, Path]] = []
    verifiers = [cosignature.CosignatureVerifier(origin, k)
                 for k in ([key] if isinstance(key, PublicKey) else key)]
    for path in checkpoint_files(root):
        if origin_dir(path.relative_to(root)) != origin:
            continue
        from writroot.jsonio import read_capped

        data = read_capped(path, note.MAX_NOTE_BYTES)
        try:
            text, _ = note.split(data, str(path))
            cp = cpmod.parse(text, str(path))
            if not any(_signed_by(data, v, str(path)) for v in verifiers):
                continue
        except (BadInput, VerificationFailed):  # not a head of this log under its key
            continue
        if cp.origin == origin:
            heads.append((cp, data, path.parent))
    if not heads:
        return Published(origin, Log(origin), b"")
    top_cp, top_signed, _ = max(heads, key=lambda h: (h[0].size, h[1]))
    reader = UnionTileReader([d for _cp, _s, d in heads])
    hashes = tiles.TileHashReader(top_cp.size, top_cp.root, reader)
    for cp, _signed, path in heads:
        if cp.size == top_cp.size and cp.root == top_cp.root:
            continue
        ok = cp.size < top_cp.size and tree.check_consistency(
            tree.consistency_proof(hashes, cp.size, top_cp.size), cp.size, top_cp.size,
            cp.root, top_cp.root)
        if not ok:
            raise PolicyRefused(f"the published set holds two checkpoints of {origin} that "
                                f"cannot both be true (sizes {cp.size} and {top_cp.size}): "
                                "the log is forked; resolve it before any ceremony extends "
                                "it [conflict-log]", str(path / CHECKPOINT_FILE))
    log = Log(origin)
    for index in range((top_cp.size + tiles.WIDTH - 1) // tiles.WIDTH):
        width = tiles.tile_width(top_cp.size, 0, index)
        tile = tiles.Tile(tiles.DATA, index, width)
        for entry in tiles.parse_entry_bundle(reader.read_tile(tile), width, tile.path):
            log.append(entry)
    if log.hashes.root() != top_cp.root:
        raise tiles.TileMismatch(f"the entries of {origin} do not hash to its checkpoint",
                                 "tile/entries")
    return Published(origin, log, top_signed)


# -- what verify concludes about the logs it is given ---------------------------------------

#: Statement types a root signs in a ceremony, so in its log (key requests, approvals,
#: enrolments and rehearsals are signed outside ceremonies).
LOGGED_TYPES = frozenset({"fleet-root", "fleet-rotation", "roster", "regional-root",
                          "revocation-list", "enclave-bundle", "federation-key",
                          "ceremony-record", "oscal-baseline", "oscal-overlay",
                          "release-provenance", "witness-policy"})
PROOF_SUFFIX = ".tlog-proof"
CHECKPOINT_SUFFIX = ".checkpoint"
EVIDENCE_SUFFIX = ".evidence.json"
MAX_LOG_FILES = 100_000


@dataclass(frozen=True)
class LogKeys:
    """What the trusted statements say about logs: origin -> log key, origin -> when that
    key was certified (statements issued before it are not required to be in its log), and
    the witness-policy statement in force."""

    keys: dict[str, PublicKey]
    since: dict[str, datetime]
    policy: Statement | None
    #: Every key each origin's log has been signed by, oldest first (the log continues when
    #: its key is replaced, so older checkpoints stay provable).
    history: dict[str, tuple[PublicKey, ...]] = field(default_factory=dict)


def contested_policies(statements: Iterable[Statement]) -> dict[str, int]:
    """Serials of witness-policy statements that claim one version with different contents
    (a conflict: none of them is in force), with that version."""
    from writroot.jsonio import canonical

    by_version: dict[int, dict[bytes, Statement]] = {}
    for st in statements:
        if st.type == "witness-policy":
            by_version.setdefault(st.subject["version"], {})[canonical(st.document)] = st
    return {st.serial: version for version, found in by_version.items() if len(found) > 1
            for st in found.values()}


#: Statements that keep counting for the logs once they expire: what a log key signed while
#: it was certified stays signed, and an expired witness policy still says what must be
#: logged and witnessed (fail-safe: time passing never turns logging off; the policy's own
#: result shows its expiry).
KEY_NAMING = ("fleet-root", "fleet-rotation", "regional-root", "witness-policy")


def _key_naming(report: Report) -> list[Statement]:
    """The statements verify trusted, and the key-naming ones whose only finding is their
    expiry (an archived log is re-verified long after its regional roots expired)."""
    return [r.statement for r in report.results if r.statement is not None and (
        r.ok or (r.type in KEY_NAMING and r.findings
                 and all(f.check == "validity-window" for f in r.findings)))]


def derive(trusted: Iterable[Statement], fleet: str | None) -> LogKeys:
    """From statements that verified with no finding (the trust engine's, or verify's)."""
    keys: dict[str, PublicKey] = {}
    since: dict[str, datetime] = {}
    statements = list(trusted)
    contested = contested_policies(statements)
    policies = [st for st in statements if st.type == "witness-policy"
                and st.serial not in contested]
    policy = max(policies, key=lambda st: (st.subject["version"], st.issued_at)) \
        if policies else None
    if fleet is None:
        return LogKeys(keys, since, policy)
    naming = [st for st in statements if "log_key" in st.subject
              and st.type in ("fleet-root", "fleet-rotation", "witness-policy")]
    history: dict[str, list[PublicKey]] = {}
    if naming:
        naming.sort(key=lambda st: (st.issued_at, st.type, st.serial))
        origin = fleet_origin(fleet)
        keys[origin] = naming[-1].subject["log_key"]
        since[origin] = naming[0].issued_at
        history[origin] = [st.subject["log_key"] for st in naming]
    regional = sorted((st for st in statements if st.type == "regional-root"
                       and "log_key" in st.subject),
                      key=lambda st: (st.subject["version"], st.issued_at))
    for st in regional:  # the newest version of each region wins
        origin = region_origin(fleet, st.subject["region"])
        keys[origin] = st.subject["log_key"]
        since.setdefault(origin, st.issued_at)
        history.setdefault(origin, []).append(st.subject["log_key"])
    return LogKeys(keys, since, policy,
                   {o: tuple(dict.fromkeys(ks)) for o, ks in history.items()})


@dataclass
class LogFiles:
    """The log files found among verify's inputs (read, capped), by name."""

    checkpoints: list[tuple[str, bytes]]
    proofs: list[tuple[str, bytes]]
    evidence: list[tuple[str, bytes]]
    tile_dirs: dict[str, list[Path]]
    #: Tiles held elsewhere than in directories (an audit package's, in memory), by origin.
    readers: dict[str, tiles.TileReader] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.checkpoints or self.proofs or self.evidence)


def split_inputs(paths: list[str]) -> tuple[list[str], LogFiles]:
    """The paths that hold envelopes, and the log files among and below the others: under a
    directory, `logs/<origin>/checkpoint` (with its tiles), `*.tlog-proof` and
    `*.evidence.json`; a file is told by its content."""
    from writroot.jsonio import read_capped

    files = LogFiles([], [], [], {})
    keep: list[str] = []
    count = 0

    def add(kind: list[tuple[str, bytes]], path: Path, cap: int) -> None:
        nonlocal count
        count += 1
        if count > MAX_LOG_FILES:
            raise BadInput(f"more than {MAX_LOG_FILES} log files", str(path))
        kind.append((str(path), read_capped(path, cap)))

    for text in paths:
        path = Path(text)
        if path.is_dir():
            for cp in checkpoint_files(path):
                add(files.checkpoints, cp, note.MAX_NOTE_BYTES)
                origin = origin_dir(cp.relative_to(path))
                if origin is not None:
                    files.tile_dirs.setdefault(origin, []).append(cp.parent)
            for found in sorted(path.rglob(f"*{CHECKPOINT_SUFFIX}")):  # cosigned copies
                if found.is_file() and not found.is_symlink():
                    add(files.checkpoints, found, note.MAX_NOTE_BYTES)
            for found in sorted(path.rglob(f"*{PROOF_SUFFIX}")):
                if found.is_file() and not found.is_symlink():
                    add(files.proofs, found, note.MAX_NOTE_BYTES + 8192)
            for found in sorted(path.rglob(f"*{EVIDENCE_SUFFIX}")):
                if found.is_file() and not found.is_symlink():
                    add(files.evidence, found, 2 * note.MAX_NOTE_BYTES + 65536)
            if any(path.rglob("*.dsse.json")):
                keep.append(text)
            continue
        if not path.is_file():
            keep.append(text)  # the envelope gatherer names it
            continue
        head = read_capped(path, 2 * note.MAX_NOTE_BYTES + 65536)
        if head.startswith(b"c2sp.org/tlog-proof@v1\n"):
            files.proofs.append((text, head))
        elif head.lstrip().startswith(b"{") and b'"writroot-witness-evidence"' in head:
            files.evidence.append((text, head))
        elif not head.lstrip().startswith(b"{") and "\n\n\u2014 ".encode() in head:
            files.checkpoints.append((text, head))
        else:
            keep.append(text)
    return keep, files


def _evidence(name: str, data: bytes) -> tuple[list[tuple[str, bytes]], str]:
    """A witness's evidence file: its two signed checkpoints (to be judged with the rest),
    or why it is malformed."""
    from writroot.jsonio import loads_strict
    from writroot.log.witness import EVIDENCE_TYPE

    try:
        obj = loads_strict(data, name, len(data) + 1)
    except BadInput as exc:
        return [], exc.message
    fields = {"type", "version", "kind", "origin", "witness", "time", "message", "cosigned",
              "presented", "proof"}
    if not isinstance(obj, dict) or set(obj) != fields or obj["type"] != EVIDENCE_TYPE \
            or not isinstance(obj["cosigned"], str) or not isinstance(obj["presented"], str) \
            or obj["kind"] not in ("rollback", "split-view", "inconsistent"):
        return [], f"not a {EVIDENCE_TYPE} file"
    return [(f"{name} (cosigned)", obj["cosigned"].encode()),
            (f"{name} (presented)", obj["presented"].encode())], ""


def _by_head(dirs: list[Path]) -> list[Path]:
    """Copies of a log's directory, largest checkpoint first (by size, then root hash): the
    largest head's own tiles are read first, whatever the order or names of the inputs."""
    from writroot.jsonio import read_capped

    def head(d: Path) -> tuple[int, bytes]:
        try:
            text, _ = note.split(read_capped(d / CHECKPOINT_FILE, note.MAX_NOTE_BYTES), str(d))
            cp = cpmod.parse(text, str(d))
        except BadInput:
            return (-1, b"")
        return (cp.size, cp.root)

    return sorted(dirs, key=lambda d: head(d), reverse=True)


def judge(report: Report, fleet: str | None, files: LogFiles,
          payload_of: Callable[[str], bytes | None]) -> None:
    """Add the logs' findings to `report` (verify's, after the trust phases): on each
    statement (log-included, log-witnessed, conflict-log), and a result per checkpoint,
    proof and evidence file. `payload_of` gives an artifact's DSSE payload by name (its log
    entry is that payload's SHA-256). Revocations were applied before: no log state
    can undo them."""
    import hashlib

    from writroot.log import verifycheck
    from writroot.verify.report import ArtifactResult, Finding

    trusted = [r.statement for r in report.results if r.ok and r.statement is not None]
    derived = derive(_key_naming(report), fleet)
    contested = contested_policies(trusted)
    for r in report.results:
        if r.statement is not None and r.serial in contested:
            r.findings.append(Finding(r.name, "conflict-witness-policy", "another witness "
                                      f"policy claims version {contested[r.serial]}: neither "
                                      "is in force"))
    if not derived.keys and not files:
        return
    # A root that certified a log key keeps its log: with no witness policy among the inputs
    # (withheld, say, to show one enclave a statement nobody else sees) inclusion is still
    # required, and the statement fails log-witnessed (who must cosign is unknown); only a
    # policy in force that says "optional" lets a statement go unlogged.
    policy = verifycheck.WitnessPolicy((), 0, True)
    if derived.policy is not None:
        sub = derived.policy.subject
        policy = verifycheck.WitnessPolicy(tuple((w["name"], w["key"]) for w in
                                                 sub["witnesses"]), sub["quorum"],
                                           sub["logging"] == "required")
    issuers = {st.subject["key"].keyid: st.subject["region"] for st in trusted
               if st.type == "regional-root"}
    statements = []
    for r in report.results:
        st = r.statement
        if st is None or st.type not in LOGGED_TYPES or fleet is None:
            continue
        origin = fleet_origin(fleet) if st.issuer_role == "fleet-root" else (
            region_origin(fleet, issuers[st.issuer_keyid])
            if st.issuer_keyid in issuers else None)
        if origin is None or origin not in derived.keys \
                or st.issued_at < derived.since[origin]:
            continue  # its issuer kept no log yet
        payload = payload_of(r.name)
        if payload is not None:
            statements.append(verifycheck.Statement(r.name, hashlib.sha256(payload).digest(),
                                                    origin))
        if derived.policy is None:  # the witnesses and their quorum are unknown: fail closed
            r.findings.append(Finding(r.name, "log-witnessed", f"its issuer keeps a log "
                                      f"({origin}), but no witness policy is among the inputs: "
                                      "give the fleet's witness policy (the published set "
                                      "whole)"))
    checkpoints = list(files.checkpoints)
    kinds: dict[str, tuple[str, str]] = {}  # subject -> (result name, type)
    for name, _data in files.checkpoints:
        kinds[name] = (name, "checkpoint")
    for name, _data in files.proofs:
        kinds[name] = kinds[f"{name} (checkpoint)"] = (name, "tlog-proof")
    extra: dict[str, ArtifactResult] = {}
    for name, data in files.evidence:
        notes, problem = _evidence(name, data)
        extra[name] = ArtifactResult(name, "witness-evidence")
        if problem:
            extra[name].findings.append(Finding(name, "evidence-well-formed", problem, True))
        for part, signed in notes:
            checkpoints.append((part, signed))
            kinds[part] = (name, "witness-evidence")
    readers: dict[str, tiles.TileReader] = {
        origin: UnionTileReader(_by_head(dirs)) for origin, dirs in files.tile_dirs.items()}
    readers.update(files.readers)
    found = verifycheck.check(derived.history, policy, checkpoints, files.proofs, statements,
                              readers)
    by_name = {r.name: r for r in report.results}
    for f in found:
        owner = kinds.get(f.subject)
        if owner is not None:
            name, kind = owner
            result = extra.setdefault(name, ArtifactResult(name, kind))
            if kind == "witness-evidence" and f.check == "log-witnessed":
                continue  # the checkpoints a witness kept are evidence, not for cosigning
        elif f.subject in by_name:
            result = by_name[f.subject]
        else:  # "<origin> tiles"
            result = extra.setdefault(f.subject, ArtifactResult(f.subject, "log-tiles"))
        if not f.ok:
            malformed = f.message.startswith("malformed")
            result.findings.append(Finding(result.name, f.check, f.message, malformed))
    report.results.extend(extra[k] for k in sorted(extra))


@dataclass(frozen=True)
class LogRow:
    origin: str
    size: int | None  # None: no checkpoint of it among the inputs
    root: str | None  # base64, as in the checkpoint
    quorum: int
    witnesses: tuple[str, ...]  # the policy's witnesses that cosigned that tree
    last_cosigned: str | None

    def to_json(self) -> dict[str, object]:
        return {"origin": self.origin, "size": self.size, "root": self.root,
                "cosigned": len(self.witnesses), "quorum": self.quorum,
                "witnesses": list(self.witnesses), "last_cosigned": self.last_cosigned}


def log_status(report: Report, fleet: str | None, files: LogFiles) -> list[LogRow]:
    """For `writroot status`: each log with a certified key, its newest validly signed
    checkpoint among the inputs, and which witnesses of the policy in force cosigned that
    tree and when (cosignatures of one tree pooled across its copies)."""
    import base64

    from writroot.jsonio import format_time
    from writroot.log import proof as proofmod

    derived = derive(_key_naming(report), fleet)
    witnesses = [] if derived.policy is None else [
        cosignature.CosignatureVerifier(w["name"], w["key"])
        for w in derived.policy.subject["witnesses"]]
    quorum = 0 if derived.policy is None else int(derived.policy.subject["quorum"])
    notes = list(files.checkpoints)
    for name, data in files.proofs:
        try:
            notes.append((name, proofmod.parse(data, name).checkpoint))
        except BadInput:
            continue
    trees: dict[str, dict[tuple[int, bytes], dict[str, int]]] = {}
    for name, data in notes:
        try:
            text, sigs = note.split(data, name)
            cp = cpmod.parse(text, name)
        except BadInput:
            continue
        logs = [cosignature.CosignatureVerifier(cp.origin, k)
                for k in derived.history.get(cp.origin, ())]
        message = text.encode()
        if not any((s.name, s.key_id) == (log.name, log.key_id)
                   and log.verify(message, s.signature) for log in logs for s in sigs):
            continue
        cosigned = trees.setdefault(cp.origin, {}).setdefault((cp.size, cp.root), {})
        for w in witnesses:
            for s in sigs:
                if (s.name, s.key_id) == (w.name, w.key_id) and w.verify(message, s.signature):
                    when = cosignature.timestamp_of(s)
                    cosigned[w.name] = max(when, cosigned.get(w.name, 0))
    rows: list[LogRow] = []
    for origin in sorted(derived.keys):
        heads = trees.get(origin, {})
        if not heads:
            rows.append(LogRow(origin, None, None, quorum, (), None))
            continue
        (size, root), by = max(heads.items())
        last = format_time(datetime.fromtimestamp(max(by.values()), UTC)) if by else None
        rows.append(LogRow(origin, size, base64.b64encode(root).decode(), quorum,
                           tuple(sorted(by)), last))
    return rows


class MemoryTileReader:
    """Tiles held in memory under `prefix` (an audit package's `distribution/logs/<origin>/`)."""

    def __init__(self, files: dict[str, bytes], prefix: str) -> None:
        self.files, self.prefix = files, prefix

    def read_tile(self, tile: tiles.Tile) -> bytes:
        data = self.files.get(self.prefix + tile.path)
        if data is None:
            raise BadInput(f"no tile {tile.path}", self.prefix)
        return data


def in_memory(files: dict[str, bytes], name: Callable[[str], str]) -> LogFiles:
    """The log files among an audit package's files (rel path -> bytes); `name` gives the
    name a file is reported under."""
    out = LogFiles([], [], [], {})
    for rel, data in sorted(files.items()):
        parts = rel.split("/")
        if parts[-1] == CHECKPOINT_FILE and LOGS_DIR in parts[:-1]:
            out.checkpoints.append((name(rel), data))
            origin = origin_dir(Path(rel))
            if origin is not None:
                prefix = rel[:-len(CHECKPOINT_FILE)]
                out.readers.setdefault(origin, MemoryTileReader(files, prefix))
        elif rel.endswith(CHECKPOINT_SUFFIX):
            out.checkpoints.append((name(rel), data))
        elif rel.endswith(PROOF_SUFFIX):
            out.proofs.append((name(rel), data))
        elif rel.endswith(EVIDENCE_SUFFIX):
            out.evidence.append((name(rel), data))
    return out
