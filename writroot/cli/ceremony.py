"""`writroot ceremony plan|approve|run|show` and `writroot custodian keygen`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from writroot.cli.common import console, json_option, print_json
from writroot.hsm.pin import PIN_SOURCE_HELP as PASS_HELP


@click.group()
def ceremony() -> None:
    """Plan, approve and run quorum-gated ceremonies."""


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _review(plan: Any, out: Any, now: datetime) -> dict[str, Any]:
    """The one review (writroot.ceremony.review), printed on `out` unless it is None."""
    from writroot.ceremony.review import render, review

    data = review(plan, now)
    if out is not None:
        render(data, out)
    return data


def _confirm(plan: Any, action: str, now: datetime) -> bool:
    """The review on stderr, then the typed ceremony id (prompt on stderr, never stdout)."""
    _review(plan, console(stderr=True), now)
    typed = click.prompt(f"type the ceremony id ({plan.ceremony}) to {action}",
                         default="", show_default=False, err=True)
    return bool(typed == plan.ceremony)


def _anchor_options(func: Any) -> Any:
    """`--anchor` and `--trust`: what every plan but genesis is checked against."""
    func = click.option("--trust", "trust_dir", type=click.Path(path_type=Path),
                        help="The fleet's published set (a directory of *.dsse.json): the "
                        "statements from which the chain to the anchor is walked.")(func)
    return click.option("--anchor", metavar="FINGERPRINT|PEMFILE",
                        help="The pinned fleet anchor (fingerprint, PGP words or PEM file): "
                        "required for every plan but genesis.")(func)


def _pinned(anchor: str | None, trust_dir: Path | None) -> Any:
    from writroot.ceremony.trust import pinned_from

    return pinned_from(anchor, trust_dir, "--anchor")


@ceremony.command()
@click.argument("plan_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", "out_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Locked plan to write (default: PLAN.lock.json beside the plan).")
@_anchor_options
@json_option
def plan(plan_file: Path, out_path: Path | None, anchor: str | None, trust_dir: Path | None,
         as_json: bool) -> None:
    """Check a YAML plan strictly, pin every input by SHA-256, establish its signed inputs
    from the pinned anchor and write the locked plan."""
    from writroot.ceremony.plan import lock
    from writroot.outputs import Staging

    now = _now()
    locked = lock(plan_file, now, _pinned(anchor, trust_dir))
    target = out_path or plan_file.with_suffix(".lock.json")
    with Staging(target.parent.resolve()) as stage:
        stage.write(target.name, locked.dumps())
    if as_json:
        print_json({"locked_plan": str(target), "plan_sha256": locked.sha256,
                    "ceremony": locked.ceremony, "review": _review(locked, None, now)})
        return
    out = console()
    _review(locked, out, now)
    out.print(f"locked plan written to {target}", markup=False)


@ceremony.command()
@click.argument("locked", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--approvals", "approvals", multiple=True,
              type=click.Path(path_type=Path), help="Approval files or directories.")
@_anchor_options
@json_option
def show(locked: Path, approvals: tuple[Path, ...], anchor: str | None, trust_dir: Path | None,
         as_json: bool) -> None:
    """Review a locked plan (checked again against every rule, its inputs re-read and
    established from the pinned anchor) and count the approvals given for it."""
    from writroot.ceremony.plan import revalidate
    from writroot.ceremony.runner import load_approvals, tally_for

    now = _now()
    plan_doc = revalidate(locked, now, _pinned(anchor, trust_dir))
    tally = tally_for(plan_doc, load_approvals(list(approvals)), now)
    if as_json:
        print_json({"plan_sha256": plan_doc.sha256, "ceremony": plan_doc.ceremony,
                    "quorum": tally.to_json(), "review": _review(plan_doc, None, now)})
        return
    out = console()
    _review(plan_doc, out, now)
    _print_tally(tally, out)


def _print_tally(tally: Any, out: Any) -> None:
    from writroot.display import inert

    out.print(f"approvals  {len(tally.counted)} of {tally.threshold} counted: "
              f"{inert(', '.join(tally.counted)) or 'none'}", markup=False)
    for name, reason in tally.rejected:  # file names and reasons come from inputs
        out.print(f"  not counted {inert(name)}: {inert(reason)}", markup=False)


@ceremony.command()
@click.argument("locked", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--custodian", "custodian_id", required=True,
              help="Your custodian id on the plan's roster.")
@click.option("--key", "key_file", type=click.Path(path_type=Path, dir_okay=False),
              help="The custodian's encrypted ML-DSA-65 key file.")
@click.option("--passphrase", default="prompt", show_default=True, metavar="SOURCE",
              help=f"Key file passphrase: {PASS_HELP}.")
@click.option("--card-label", help="Smartcard token label (ECDSA P-384 or Ed25519 custodian "
              "key).")
@click.option("--card-pin", default="prompt", show_default=True, metavar="SOURCE",
              help=f"Smartcard PIN: {PASS_HELP}.")
@click.option("--module", envvar="WRITROOT_PKCS11_MODULE", metavar="PATH",
              help="The smartcard's PKCS#11 module (default: SoftHSM2; env "
              "WRITROOT_PKCS11_MODULE).")
@click.option("--hours", type=click.IntRange(1, 24 * 90), default=None,
              help="Hours until the approval expires (default 72, at most the fleet policy's "
              "approval_expiry_hours).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              required=True, help="Directory to write the approval into.")
@click.option("--yes", is_flag=True, help="Do not ask for the typed ceremony id (CI).")
@_anchor_options
@json_option
def approve(locked: Path, custodian_id: str, key_file: Path | None, passphrase: str,
            card_label: str | None, card_pin: str, module: str | None, hours: int | None,
            out_dir: Path, yes: bool, anchor: str | None, trust_dir: Path | None,
            as_json: bool) -> None:
    """Review a locked plan (checked again against every rule, its signed inputs established
    from the anchor you pin) and sign an approval of exactly it (its SHA-256) as one
    custodian. Everything is checked before any prompt."""
    from writroot.ceremony.approve import approve as approve_plan
    from writroot.ceremony.approve import preflight
    from writroot.ceremony.plan import revalidate
    from writroot.crypto.fingerprint import hex_groups
    from writroot.errors import BadInput, PolicyRefused
    from writroot.hsm.pin import read_pin
    from writroot.jsonio import format_time
    from writroot.outputs import Staging

    if (key_file is None) == (card_label is None):
        raise BadInput("give exactly one of --key and --card-label", "approve")
    now = _now()
    # the anchor, the chain, the roster, the lock, the output: all before any prompt
    plan_doc = revalidate(locked, now, _pinned(anchor, trust_dir))
    name = f"{plan_doc.ceremony}.approval.{custodian_id}.dsse.json"
    preflight(plan_doc, custodian_id, hours, out_dir / name, now)
    if not yes and not _confirm(plan_doc, "approve it", now):
        raise PolicyRefused("not confirmed; nothing was signed", "approve")
    if key_file is not None:
        from writroot.quorum.custodian import load_file_key

        signer = load_file_key(key_file, read_pin(passphrase, "key passphrase"))
        envelope = approve_plan(plan_doc, custodian_id, signer, _now(), hours)
    else:
        from writroot.hsm.token import TokenSpec, default_module, open_session
        from writroot.quorum.custodian import load_card_key

        spec = TokenSpec(module or default_module(), card_label, None, card_pin)
        with open_session(spec, rw=False) as session:
            envelope = approve_plan(plan_doc, custodian_id, load_card_key(session, custodian_id),
                                    _now(), hours)
    with Staging(out_dir) as stage:
        stage.write(name, envelope.dumps())
    from writroot.statements import parse_payload

    expires = format_time(parse_payload(envelope.payload, name).not_after)
    if as_json:
        print_json({"custodian": custodian_id, "ceremony": plan_doc.ceremony,
                    "plan_sha256": plan_doc.sha256, "approval": str(out_dir / name),
                    "expires": expires})
        return
    console().print(f"{custodian_id} approved plan {hex_groups(plan_doc.sha256)} -> "
                    f"{out_dir / name}; it expires {expires}", markup=False)


@ceremony.command()
@click.argument("locked", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--approvals", "approvals", multiple=True, required=True,
              type=click.Path(path_type=Path), help="Approval files or directories.")
@click.option("--host", "host_file", type=click.Path(path_type=Path, dir_okay=False),
              required=True, help="Host profile YAML: module, token, PIN or PIN shares.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              required=True, help="New directory for every output (published all at once).")
@click.option("--yes", is_flag=True, help="Do not ask for the typed confirmation (CI).")
@click.option("--allow-network", is_flag=True, help="Run with network interfaces up (CI).")
@click.option("--shares-out", type=click.Path(path_type=Path, file_okay=False),
              help="Plans that make a recovery split: new directory for the share files, each "
              "under its holder's passphrase (default: shown on the terminal, once per holder).")
@json_option
def run(locked: Path, approvals: tuple[Path, ...], host_file: Path, out_dir: Path, yes: bool,
        allow_network: bool, shares_out: Path | None, as_json: bool) -> None:
    """Count the quorum, then execute the locked plan on the HSM; all outputs or none.

    Before anything is signed the review is shown (on stderr) and the ceremony id must be
    typed (unless --yes); prompts and progress go to stderr, so with --json stdout holds
    exactly one JSON object."""
    from contextlib import ExitStack

    from writroot.ceremony.host import load_host_profile
    from writroot.ceremony.review import fingerprint
    from writroot.ceremony.runner import run as run_plan

    out = console() if not as_json else None
    host = load_host_profile(host_file)

    def confirm(plan_doc: Any) -> bool:
        if yes:
            if out is not None:
                _review(plan_doc, out, _now())
            return True
        return _confirm(plan_doc, "sign", _now())

    with ExitStack() as stack:
        say = _progress(stack, not as_json)
        from writroot.recovery.handout import ConsoleHandout, FileHandout
        from writroot.recovery.session import RecoveryIO

        handout = FileHandout(shares_out) if shares_out else ConsoleHandout(console(True))
        result = run_plan(locked, list(approvals), host, out_dir, confirm=confirm,
                          allow_network=allow_network, say=say,
                          recovery=RecoveryIO(handout))
    born: list[dict[str, Any]] = [
        {"label": r.label, "role": r.role, "algorithm": r.key.algorithm.name,
         "custody": r.custody, "keyid": fingerprint(r.keyid)} for r in result.generated]
    # Sealed backups of keys put on the token (custody writes them into keys/): not outputs
    # to publish, so they are named apart.
    sealed = sorted(str(p.relative_to(result.out_dir))
                    for p in (result.out_dir / "keys").glob("*.sealed.json"))
    summary = {"out": str(result.out_dir), "signer_keyid": result.signer_keyid,
               "quorum": result.tally.to_json(), "outputs": result.outputs,
               "sealed_backups": sealed,
               "network_interfaces_up": result.network, "generated": born}
    if result.log is not None:
        summary["log"] = result.log
    if as_json:
        print_json(summary)
        return
    assert out is not None
    _print_tally(result.tally, out)
    for key in born:
        out.print(f"[bold]new {key['role']} {key['label']}[/bold] ({key['algorithm']}, "
                  f"{key['custody']} custody): read this fingerprint aloud and record it")
        out.print(f"  keyid      {key['keyid']['groups']}", markup=False)
        out.print(f"  PGP words  {key['keyid']['words']}", markup=False)
    for name in result.outputs:
        out.print(f"  wrote {result.out_dir / name}", markup=False)
    for name in sealed:
        out.print(f"  wrote {result.out_dir / name}: the SEALED BACKUP of a key on this token "
                  "(mode 600). It opens only on this token: keep it with the token, never "
                  "publish it, and leave it out of the published set.", markup=False)
    sys.stdout.flush()


def _progress(stack: Any, enabled: bool) -> Any:
    """Progress over the plan's operations (an SLH-DSA-SHA2-256s signature takes most of a
    second), on stderr: a rich bar on a terminal, plain step lines otherwise, nothing with
    --json. The bar starts at the first operation, after the review, the typed id and the PIN
    prompts, so it never redraws over a prompt."""
    if not enabled:
        return lambda _message: None
    err = console(stderr=True)
    if not err.is_terminal:
        return lambda message: err.print(f"- {message}", markup=False)
    state: dict[str, Any] = {}

    def say(message: str) -> None:
        if "progress" not in state:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            progress = stack.enter_context(Progress(TextColumn("{task.description}"),
                                                    BarColumn(), TimeElapsedColumn(),
                                                    console=err, transient=True))
            state["progress"], state["task"] = progress, progress.add_task("ceremony",
                                                                           total=None)
        progress, task = state["progress"], state["task"]
        if message.startswith("operation "):
            done, total = message.split()[1].rstrip(":").split("/")
            progress.update(task, total=int(total), completed=int(done) - 1)
        progress.update(task, description=message)
        progress.console.print(f"- {message}", markup=False)

    return say


@click.group()
def custodian() -> None:
    """Custodian approval keys and enrolment."""


@custodian.command()
@click.option("--id", "custodian_id", required=True,
              help="Custodian id: 1-63 of [a-z0-9._-], starting with a letter or digit.")
@click.option("--name", required=True, help="The custodian's full name, as on the roster.")
@click.option("--fleet", required=True, help="Fleet id the enrolment is for (the plan's fleet).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              required=True, help="Directory for the enrolment, the public key and a key file.")
@click.option("--passphrase", default="prompt", show_default=True, metavar="SOURCE",
              help=f"Encrypts the ML-DSA-65 key file: {PASS_HELP}.")
@click.option("--card-label", help="Make the key on this smartcard token instead of a file.")
@click.option("--card-algorithm", type=click.Choice(["ECDSA-P384-SHA384", "Ed25519"]),
              default="ECDSA-P384-SHA384", show_default=True,
              help="The smartcard key's algorithm.")
@click.option("--card-pin", default="prompt", show_default=True, metavar="SOURCE",
              help=f"Smartcard PIN: {PASS_HELP}.")
@click.option("--module", envvar="WRITROOT_PKCS11_MODULE", metavar="PATH",
              help="The smartcard's PKCS#11 module (default: SoftHSM2; env "
              "WRITROOT_PKCS11_MODULE).")
@json_option
def keygen(custodian_id: str, name: str, fleet: str, out_dir: Path, passphrase: str,
           card_label: str | None, card_algorithm: str, card_pin: str, module: str | None,
           as_json: bool) -> None:
    """Make a custodian key and its self-signed enrolment statement; print its keyid."""
    from writroot.ceremony.review import fingerprint
    from writroot.errors import BadInput
    from writroot.hsm.pin import read_pin
    from writroot.outputs import Staging
    from writroot.quorum.enrol import enrol
    from writroot.statements import schema

    schema.name(custodian_id, "--id")
    schema.name(fleet, "--fleet")
    names = [f"{custodian_id}.enrolment.dsse.json", f"{custodian_id}.pub.pem"]
    if not card_label:
        names.append(f"{custodian_id}.key.pem")
    for fname in names:
        if (out_dir / fname).exists():
            raise BadInput("exists already (outputs are write-once)", str(out_dir / fname))
    created_dir = not out_dir.exists()
    key_path = out_dir / f"{custodian_id}.key.pem"
    try:
        if card_label:
            from writroot.hsm.token import TokenSpec, default_module, open_session
            from writroot.quorum.custodian import create_card_key

            spec = TokenSpec(module or default_module(), card_label, None, card_pin)
            with open_session(spec, rw=True) as session:
                signer: Any = create_card_key(session, custodian_id, card_algorithm)
                envelope = enrol(signer, fleet, custodian_id, name, _now())
        else:
            from writroot.quorum.custodian import create_file_key, load_file_key

            secret = read_pin(passphrase, "new key passphrase", confirm=True)
            create_file_key(key_path, bytearray(secret))
            signer = load_file_key(key_path, secret)
            envelope = enrol(signer, fleet, custodian_id, name, _now())
        with Staging(out_dir) as stage:
            stage.write(f"{custodian_id}.enrolment.dsse.json", envelope.dumps())
            stage.write(f"{custodian_id}.pub.pem", signer.key.pem.encode())
    except BaseException:
        _remove_new(key_path if not card_label else None, out_dir if created_dir else None)
        raise
    fp = fingerprint(signer.key.keyid)
    if as_json:
        print_json({"custodian": custodian_id, "name": name, "fleet": fleet,
                    "algorithm": signer.key.algorithm.name, "keyid": fp,
                    "custody": "smartcard" if card_label else "file",
                    "enrolment": str(out_dir / names[0]), "public_key": str(out_dir / names[1]),
                    **({} if card_label else {"key_file": str(key_path)})})
        return
    out = console()
    out.print(f"custodian {custodian_id} ({signer.key.algorithm.name}) enrolled", markup=False)
    out.print(f"  keyid      {fp['groups']}", markup=False)
    out.print(f"  PGP words  {fp['words']}", markup=False)


def _remove_new(key_path: Path | None, new_dir: Path | None) -> None:
    """After a failed keygen: remove the key file it made and the directory it created."""
    if key_path is not None and key_path.exists() and not key_path.is_symlink():
        key_path.unlink()
    if new_dir is not None:
        try:
            new_dir.rmdir()
        except OSError:
            pass
