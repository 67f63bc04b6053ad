"""`ceremony run`: count the quorum, then sign exactly the locked plan, all or nothing.

Order matters: inputs re-hashed, approvals counted (exit 4 below threshold) and the air gap
checked before the HSM is opened; every output is staged and published by one rename.
"""

from __future__ import annotations

import hashlib
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from writroot import __version__, failpoint
from writroot.ceremony import parallel, retire
from writroot.ceremony.approve import approval_hours, plan_roster, plan_rosters
from writroot.ceremony.commit import RunCommit
from writroot.ceremony.host import HostProfile, network_interfaces_up
from writroot.ceremony.operations import BuildContext, statement_for
from writroot.ceremony.plan import LockedPlan, revalidate
from writroot.ceremony.transcript import Transcript
from writroot.crypto.algorithms import by_name
from writroot.crypto.keys import PublicKey, wipe
from writroot.errors import BadInput, PolicyRefused, QuorumNotMet
from writroot.hsm.custody import Custody, KeyRecord
from writroot.hsm.token import TokenSpec, default_module, token_facts
from writroot.jsonio import canonical, format_time, read_json_file
from writroot.outputs import write_once
from writroot.quorum.count import Roster, Tally, count
from writroot.rules.covers import OP_TYPE
from writroot.rules.recovery import key_custody
from writroot.rules.validity import approval_window
from writroot.signing import Signed, sign_statement
from writroot.statements import build, roster_check

if TYPE_CHECKING:
    from writroot.recovery.session import RecoveryIO

Say = Callable[[str], None]
Confirm = Callable[[LockedPlan], bool]


@dataclass
class RunResult:
    out_dir: Path
    tally: Tally
    signer_keyid: str = ""
    outputs: list[str] = field(default_factory=list)
    signed: list[Signed] = field(default_factory=list)
    network: list[str] | None = field(default_factory=list)  # None: could not look
    generated: list[KeyRecord] = field(default_factory=list)  # keys this run put on the token
    plan_sha256: str = ""
    previous_root: str = ""  # the signer a rotation supersedes
    #: Operations that publish no statement, with what the run recorded of each: the signed
    #: ceremony record names them, so an auditor sees they happened.
    unsigned: list[dict[str, Any]] = field(default_factory=list)
    log: dict[str, Any] | None = None  # the issuer's log head after this run's appends


def load_approvals(paths: list[Path]) -> list[tuple[str, Any]]:
    files: list[Path] = []
    for p in paths:
        if not p.exists():
            raise BadInput("no such file or directory", f"--approvals {p}")
        files += sorted(p.glob("*.dsse.json")) if p.is_dir() else [p]
    out = []
    for f in files:
        try:
            out.append((str(f), read_json_file(f)))
        except BadInput as exc:
            out.append((str(f), {"unreadable": str(exc)}))
    return out


def revoked_for(plan: LockedPlan) -> Callable[[str], str | None]:
    """Why a custodian key counts nothing: any revocation the engine established, whenever
    it took effect (an approval's own time is the custodian's claim, so it cannot save it)."""
    trust = plan.trust

    def why(keyid: str) -> str | None:
        hit = trust.revoked(f"keyid:{keyid}") if trust is not None else None
        if hit is None:
            return None
        return f"revoked at {format_time(hit.revoked_at)} by revocation list {hit.sequence}"
    return why


def tally_for(plan: LockedPlan, approvals: list[tuple[str, Any]], at: datetime) -> Tally:
    """The count under the roster in force (the trust engine's: the lock's roster is checked
    against it); a roster change must also meet the new roster's threshold (TUF's rule),
    reported as one tally that is met only when both are. Revoked custodians count nothing."""
    hours = approval_hours(plan)
    revoked = revoked_for(plan)
    tally = count(approvals, plan_roster(plan), plan.ceremony, plan.sha256, at, hours, revoked)
    for op in plan.operations:
        if op["op"] == "sign-roster":
            new = Roster.from_checked(roster_check(op["roster"]["roster"], "new roster"))
            under_new = count(approvals, new, plan.ceremony, plan.sha256, at, hours, revoked)
            if not under_new.met:
                tally.rejected.append(("new roster", f"{len(under_new.counted)} of "
                                       f"{under_new.threshold} approvals by the new roster"))
                tally.threshold = max(tally.threshold, len(tally.counted) + 1)
    return tally


def run(plan_path: Path, approval_paths: list[Path], host: HostProfile, out_dir: Path, *,
        confirm: Confirm, allow_network: bool = False, say: Say = lambda _m: None,
        now: datetime | None = None, pin: bytearray | None = None,
        recovery: RecoveryIO | None = None) -> RunResult:
    """`pin` is a PIN already in memory (the demo's); otherwise the host profile's source.
    `recovery` says where new recovery shares go and where a restore's shares come from."""
    now = now or datetime.now(UTC).replace(microsecond=0)
    # Nothing the plan author's machine checked is trusted: lock the source again, from the
    # inputs, under every rule, at the time of signing (writroot.rules).
    plan = revalidate(plan_path, now, host.pinned())
    RunCommit.preflight(out_dir)  # output path, media and free space: before anything else
    approvals = load_approvals(approval_paths)
    tally = tally_for(plan, approvals, now)
    if not tally.met:
        reasons = "; ".join(f"{Path(a).name}: {r}" for a, r in tally.rejected) or "none"
        others = [c.id for c in plan_roster(plan).custodians if c.id not in tally.counted]
        raise QuorumNotMet(f"{len(tally.counted)} of {tally.threshold} approvals counted "
                           f"({', '.join(tally.counted) or 'none'}); not counted: {reasons}; "
                           f"{tally.threshold - len(tally.counted)} more needed, from "
                           f"{', '.join(others) or 'the new roster'}: each runs `writroot "
                           f"ceremony approve {plan_path.name} --custodian ID ...` on their "
                           "own machine and hands the approval to the officer",
                           str(plan_path))
    for v in approval_window(now, tally.windows):
        raise PolicyRefused(f"{v.message} [{v.rule}]", str(plan_path))
    network = network_interfaces_up()
    if network is None and not allow_network:
        raise PolicyRefused("cannot read /sys/class/net, so the air gap cannot be checked "
                            "(in a chroot, mount the host's /sys: scripts/native-tokens.sh "
                            "exec does); --allow-network for CI")
    if network and not allow_network:
        raise PolicyRefused(f"network interfaces are up ({', '.join(network)}); a ceremony "
                            "host must be air-gapped (--allow-network for CI)")
    if not confirm(plan):
        raise PolicyRefused("not confirmed; nothing was signed")
    from writroot.recovery.session import preflight

    preflight(plan.operations, recovery, str(plan_path))  # shares: before the HSM opens
    result = RunResult(out_dir, tally, network=network)
    counted = _counted_names(plan, approvals, now)
    # each artifact adds its own operation's inclusion proof (`ceremony.inclusion`)
    proof = {"id": plan.ceremony, "plan_sha256": plan.sha256,
             "approvals": [obj for name, obj in approvals if name in counted]}
    transcript = Transcript()
    transcript.record("start", ceremony=plan.ceremony, plan_sha256=plan.sha256,
                      tool=f"writroot {__version__}", host=platform.node(),
                      python=platform.python_version(), network=network,
                      allow_network=allow_network)
    transcript.record("quorum", counted=tally.counted, threshold=tally.threshold,
                      rejected=[{"approval": Path(a).name, "reason": r}
                                for a, r in tally.rejected])
    result.plan_sha256 = plan.sha256
    result.previous_root = str(plan.document.get("signer", ""))
    failpoint.check()
    with RunCommit(plan.sha256, str(plan_path), out_dir, transcript, result) as commit:
        try:
            _execute(plan, host, commit.stage, plan_path.parent, proof, transcript, result, now,
                     say, pin, commit, recovery)
        finally:
            if recovery is not None:
                recovery.close()
    return result


def _counted_names(plan: LockedPlan, approvals: list[tuple[str, Any]],
                   now: datetime) -> set[str]:
    """Approvals counted under the roster in force or, for a roster change, the new roster."""
    rosters = plan_rosters(plan)
    names: set[str] = set()
    for roster in rosters:
        tally = count(approvals, roster, plan.ceremony, plan.sha256, now,
                      approval_hours(plan), revoked_for(plan))
        rejected = {a for a, _ in tally.rejected}
        names |= {name for name, _ in approvals if name not in rejected}
    return names


def _pin(host: HostProfile) -> bytearray:
    from writroot.hsm.pin import read_pin
    from writroot.quorum.splitpin import combine_pin

    return combine_pin(list(host.pin_shares)) if host.pin_shares else read_pin(host.pin_source)


def _execute(plan: LockedPlan, host: HostProfile, staging: Path, plan_dir: Path,
             proof: dict[str, Any],
             transcript: Transcript, result: RunResult, now: datetime, say: Say,
             given_pin: bytearray | None, commit: RunCommit,
             recovery: RecoveryIO | None = None) -> None:
    spec = TokenSpec(host.module or default_module(), host.token_label, host.token_serial,
                     host.pin_source)
    pin = bytearray(given_pin) if given_pin is not None else _pin(host)
    try:
        with commit.session(spec, pin) as session:
            custody = Custody(session, spec.module)
            facts = token_facts(session.token)
            transcript.record("token", **facts)
            _planted(custody, transcript)
            keyid = plan.document["signer"]
            role = "regional-root" if "authority" in plan.document else "fleet-root"
            signer_key: PublicKey | None = None
            log_key: PublicKey | None = None  # a log key this ceremony made
            pending: list[tuple[dict[str, Any], dict[str, Any], bytes]] = []

            def flush() -> None:
                """Sign the statements built so far (on every core the host allows), then
                write and record them in operation order."""
                payloads = [payload for _op, _extra, payload in pending]
                signed_all = parallel.sign_all(custody, keyid, payloads, host.workers)
                for (op, extra, payload), signed in zip(pending, signed_all, strict=True):
                    _record_signed(op, extra, payload, signed, staging, transcript, result)
                pending.clear()

            for index, op in enumerate(plan.operations):
                say(f"operation {index + 1}/{len(plan.operations)}: {op['op']}")
                if op["op"] not in OP_TYPE or op["op"] == "rotate-fleet-root":
                    flush()  # a key made, restored or retired: what came before is signed
                mark = len(transcript.lines)
                if op["op"] == "generate-fleet-root":
                    _no_fleet_key(custody, plan)
                    signer_key = _new_fleet_root(op, custody, staging, transcript, result,
                                                 "fleet-root.pem", plan, recovery)
                    keyid = signer_key.keyid
                    if "log_key_label" in op:
                        log_key = _new_log_key(op, custody, staging, transcript, result)
                elif op["op"] in ("restore-key", "resplit-recovery"):  # writroot/recovery/
                    restored = _recovery_op(op, custody, staging, plan_dir, plan, transcript,
                                            result, recovery)
                    signer_key = restored or signer_key
                elif op["op"] == retire.OP:  # no statement: the ceremony record names it
                    retire.execute(op, custody, transcript, keyid, plan.ceremony)
                if op["op"] not in OP_TYPE:
                    result.unsigned.append(_unsigned(index, op, transcript, mark))
                    continue
                if signer_key is None:
                    signer_key = custody.find(keyid).key
                if "log_key_label" in op and op["op"] != "generate-fleet-root":
                    log_key = _new_log_key(op, custody, staging, transcript, result)
                ctx = BuildContext(plan.document["fleet"], role, keyid, signer_key,
                                   plan.document["roster"]["roster"],
                                   {**proof, "inclusion": plan.inclusion(index)}, now, log_key)
                extra = _prepare(op, custody, staging, plan_dir, transcript, result, plan,
                                 recovery)
                payload = statement_for(op, index, ctx, **extra)
                if "new_key" in extra:  # a rotation: signed by the old and the new root
                    signed = sign_statement(custody, keyid, payload, (extra["new_key"].keyid,))
                    _record_signed(op, extra, payload, signed, staging, transcript, result)
                else:
                    pending.append((op, extra, payload))
            flush()
            result.signer_keyid = keyid
            transcript.record("outputs", files={n: _digest(staging / n) for n in result.outputs})
            record = _close(plan, custody, keyid, role, transcript, staging, result, now)
            if plan.log is not None:  # the issuer's log: its appends publish with the rest
                from writroot.ceremony import logs

                payloads = [s.envelope.payload for s in result.signed]
                files = logs.append(plan.log, log_key, custody,
                                    [*payloads, record.envelope.payload], int(now.timestamp()))
                for name, data in files.items():
                    _write(staging, name, data, result)
                result.log = plan.log.head()
            if recovery is not None and recovery.handout is not None:
                recovery.handout.publish()  # share files: before the ceremony's outputs
            commit.commit()
    finally:
        wipe(pin)


def _no_fleet_key(custody: Custody, plan: LockedPlan) -> None:
    """Genesis makes the one fleet root: a token that holds another refuses it (a key left
    by an unpublished run of this same plan is removed by the generation that follows)."""
    held = [r for r in custody.keys() if r.role == "fleet-root"
            and r.plan_sha256 != plan.sha256 and r.keyid not in custody.retired()]
    if held:
        raise PolicyRefused(f"this token holds fleet root {held[0].keyid} already: a genesis "
                            "plan runs only on a token with no fleet key [genesis-token]",
                            "generate-fleet-root")


def _unsigned(index: int, op: dict[str, Any], transcript: Transcript,
              mark: int) -> dict[str, Any]:
    """An operation that publishes no statement, named with its parameters and what the run
    recorded of it (keyids, splits, holders: never a share)."""
    import json

    params = {k: v for k, v in op.items() if k not in ("op", "source")}
    events = [json.loads(line) for line in transcript.lines[mark:]]
    return {"index": index, "op": op["op"], "params": params,
            "events": [{"event": e["event"], **e["facts"]} for e in events]}


def _planted(custody: Custody, transcript: Transcript) -> None:
    """Public objects named like writroot's (made without the PIN; `hsm info` lists them):
    ignored by custody, but someone had the token: warn on stderr and record them."""
    from writroot.display import inert

    planted = custody.planted()
    if not planted:
        return
    transcript.record("planted", objects=[{"label": p.label, "kind": p.kind} for p in planted])
    for p in planted:
        try:
            sys.stderr.write(f"writroot: warning: PLANTED public {p.kind} '{inert(p.label)}' "
                             "on the token: made without the PIN; writroot ignores it — "
                             "investigate and destroy it (writroot hsm info)\n")
        except OSError:
            pass


def _record_signed(op: dict[str, Any], extra: dict[str, Any], payload: bytes, signed: Signed,
                   staging: Path, transcript: Transcript, result: RunResult) -> None:
    name = artifact_name(signed)
    _write(staging, f"artifacts/{name}", signed.envelope.dumps(), result)
    if "bundle" in extra:
        _write(staging, f"bundles/{op['trust_domain']}.spiffe.json",
               canonical(extra["bundle"]) + b"\n", result)
    result.signed.append(signed)
    transcript.record("sign", op=op["op"], type=signed.statement.type,
                      serial=signed.statement.serial, artifact=name,
                      payload_sha256=hashlib.sha256(payload).hexdigest(),
                      signers=[s.keyid for s in signed.envelope.signatures],
                      engine=signed.engine, checked_by=signed.checked_by)


def _new_fleet_root(op: dict[str, Any], custody: Custody, staging: Path,
                    transcript: Transcript, result: RunResult, pem_name: str,
                    plan: LockedPlan, recovery: RecoveryIO | None) -> PublicKey:
    """Generate a fleet root in the HSM (genesis or rotation) and stage its PEM; with
    recovery holders, seal it into a recovery blob and hand out the shares (recovery/)."""
    from writroot.recovery.escrow import Escrow

    alg = by_name(op["algorithm"])
    # a key left under this label by a run of a plan that never published is removed first
    supersedes = result.previous_root if op["op"] == "rotate-fleet-root" else ""
    escrow = None
    if "recovery_holders" in op:
        escrow = Escrow(plan.document["fleet"], "fleet-root",
                        op.get("policy", plan.policy or {}), op["recovery_holders"])
    try:
        record = custody.generate(alg, "fleet-root", op["label"], key_custody(op),
                                  backup_dir=staging / "keys",
                                  plan_sha256=result.plan_sha256, supersedes=supersedes,
                                  escrow=escrow,
                                  recovery_split=escrow.split_id if escrow else "")
        result.generated.append(record)
        transcript.record("generate", label=op["label"], keyid=record.keyid,
                          algorithm=alg.name, custody=record.custody,
                          recovery_split=escrow.split_id if escrow else None)
        _write(staging, pem_name, record.key.pem.encode(), result)
        if escrow is not None:
            assert recovery is not None and recovery.handout is not None
            escrow.finish(recovery.handout,
                          lambda name, data: _write(staging, name, data, result),
                          transcript.record)
    finally:
        if escrow is not None:
            escrow.split.wipe()
    return record.key


def _new_log_key(op: dict[str, Any], custody: Custody, staging: Path,
                 transcript: Transcript, result: RunResult) -> PublicKey:
    """The fleet's log key (ML-DSA-44, DESIGN §6a), born in the root's own HSM in this quorum
    ceremony; the statement this ceremony signs names it."""
    from writroot.crypto.algorithms import ML_DSA_44

    label = op["log_key_label"]
    record = custody.generate(ML_DSA_44, "fleet-log", label, str(op.get("custody", "auto")),
                              backup_dir=staging / "keys", plan_sha256=result.plan_sha256)
    result.generated.append(record)
    transcript.record("generate", label=label, keyid=record.keyid, algorithm=ML_DSA_44.name,
                      custody=record.custody, role="fleet-log")
    _write(staging, f"log-keys/{label}.pem", record.key.pem.encode(), result)
    return record.key


def _recovery_op(op: dict[str, Any], custody: Custody, staging: Path, plan_dir: Path,
                 plan: LockedPlan, transcript: Transcript, result: RunResult,
                 recovery: RecoveryIO | None) -> PublicKey | None:
    """restore-key (the restored key, which signs the rest) or resplit-recovery."""
    assert recovery is not None
    if op["op"] == "restore-key":
        from writroot.recovery import restore

        record = restore.execute(op, custody, recovery.shares, plan, plan_dir,
                                 staging / "keys", transcript)
        result.generated.append(record)
        _write(staging, "restored-key.pem", record.key.pem.encode(), result)
        return record.key
    from writroot.recovery import resplit

    assert recovery.handout is not None
    resplit.execute(op, custody, recovery.handout, plan, plan_dir,
                    lambda name, data: _write(staging, name, data, result), transcript.record)
    return None


def _prepare(op: dict[str, Any], custody: Custody, staging: Path, plan_dir: Path,
             transcript: Transcript, result: RunResult, plan: LockedPlan,
             recovery: RecoveryIO | None) -> dict[str, Any]:
    """What an operation needs beyond the plan: a rotation's new root, an enclave's bundle."""
    if op["op"] == "rotate-fleet-root":
        return {"new_key": _new_fleet_root(op, custody, staging, transcript, result,
                                           f"fleet-root-v{op['version']}.pem", plan, recovery)}
    if op["op"] == "sign-enclave-bundle":
        from writroot.jsonio import loads_strict
        from writroot.spiffe import bundle_check

        path = plan_dir / op["bundle"]["path"]
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != op["bundle"]["sha256"]:
            raise PolicyRefused("input changed since the plan was locked", str(path))
        return {"bundle": bundle_check(loads_strict(data, str(path)), str(path))}
    if op["op"] in ("sign-oscal-baseline", "sign-oscal-overlay"):
        from writroot.ceremony.oscal_ops import prepare

        doc = prepare(op, plan_dir)
        name = doc.subject_name.replace("/", "-")
        _write(staging, f"oscal/{name}.json", doc.canonical, result)
        return {"oscal": doc}
    return {}


def artifact_name(signed: Signed) -> str:
    st = signed.statement
    if st.type in ("regional-root", "federation-key"):
        return f"{st.type}-{st.subject['region']}-{st.serial}.dsse.json"
    if st.type == "enclave-bundle":
        return f"enclave-bundle-{st.subject['trust_domain']}-{st.serial}.dsse.json"
    return f"{st.type}-{st.serial}.dsse.json"


def _write(staging: Path, name: str, data: bytes, result: RunResult) -> None:
    write_once(staging / name, data)
    result.outputs.append(name)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _close(plan: LockedPlan, custody: Custody, keyid: str, role: str, transcript: Transcript,
           staging: Path, result: RunResult, now: datetime) -> Signed:
    """Seal the transcript with a ceremony-record statement signed by the issuing root."""
    transcript.record("close", outputs=len(result.outputs))
    data = transcript.dumps()
    _write(staging, "transcript.jsonl", data, result)
    proof = {"id": plan.ceremony, "plan_sha256": plan.sha256, "approvals": []}
    payload = build("ceremony-record", fleet=plan.document["fleet"], issuer_role=role,
                    issuer_keyid=keyid, ceremony=proof, issued_at=now, not_before=now,
                    not_after=now + timedelta(days=3650), serial=f"{plan.ceremony}.record",
                    subject={"transcript_sha256": hashlib.sha256(data).hexdigest(),
                             "entries": len(transcript.lines), "head": transcript.head,
                             **({"established": plan.document["established"]}
                                if "established" in plan.document else {}),
                             **({"operations": result.unsigned} if result.unsigned else {})})
    signed = sign_statement(custody, keyid, payload)
    _write(staging, "ceremony-record.dsse.json", signed.envelope.dumps(), result)
    _write(staging, "plan.lock.json", canonical(plan.document) + b"\n", result)
    return signed
