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


def _review(plan: Any, out: Any) -> None:
    from writroot.crypto.fingerprint import hex_groups, pgp_words

    doc = plan.document
    out.print(f"[bold]ceremony[/bold] {doc['ceremony']}  (fleet {doc['fleet']})")
    signer = doc["signer"]
    shown = "generated in this ceremony" if signer == "generate" else hex_groups(signer)
    out.print(f"signer     {shown}")
    roster = doc["roster"]
    out.print(f"roster     {roster['path']}  sha256 {roster['sha256']}")
    out.print(f"quorum     {roster['roster']['threshold']} of "
              f"{len(roster['roster']['custodians'])}: "
              + ", ".join(c["id"] for c in roster["roster"]["custodians"]))
    for i, op in enumerate(doc["operations"], 1):
        detail = {k: v for k, v in op.items() if k not in ("op", "key", "policy")}
        out.print(f"  {i}. {op['op']} {detail}", markup=False)
        if "key" in op:
            out.print(f"     key {op['key']['path']} {op['key']['algorithm']} sha256 "
                      f"{op['key']['sha256']}")
            out.print(f"     keyid {hex_groups(op['key']['keyid'])}")
    out.print(f"plan digest {hex_groups(plan.sha256)}")
    out.print(f"            {pgp_words(bytes.fromhex(plan.sha256))}")


@ceremony.command()
@click.argument("plan_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", "out_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Locked plan to write (default: PLAN.lock.json beside the plan).")
@json_option
def plan(plan_file: Path, out_path: Path | None, as_json: bool) -> None:
    """Check a YAML plan strictly, pin every input by SHA-256 and write the locked plan."""
    from writroot.ceremony.plan import lock
    from writroot.outputs import Staging

    locked = lock(plan_file, _now())
    target = out_path or plan_file.with_suffix(".lock.json")
    with Staging(target.parent.resolve()) as stage:
        stage.write(target.name, locked.dumps())
    if as_json:
        print_json({"locked_plan": str(target), "plan_sha256": locked.sha256,
                    "ceremony": locked.ceremony})
        return
    out = console()
    _review(locked, out)
    out.print(f"locked plan written to {target}")


@ceremony.command()
@click.argument("locked", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--approvals", "approvals", multiple=True,
              type=click.Path(path_type=Path), help="Approval files or directories.")
@json_option
def show(locked: Path, approvals: tuple[Path, ...], as_json: bool) -> None:
    """Review a locked plan (checked again against every rule, its inputs re-read) and count
    the approvals given for it."""
    from writroot.ceremony.plan import revalidate
    from writroot.ceremony.runner import load_approvals, tally_for

    plan_doc = revalidate(locked, _now())
    tally = tally_for(plan_doc, load_approvals(list(approvals)), _now())
    if as_json:
        print_json({"plan_sha256": plan_doc.sha256, "ceremony": plan_doc.ceremony,
                    "quorum": tally.to_json()})
        return
    out = console()
    _review(plan_doc, out)
    _print_tally(tally, out)


def _print_tally(tally: Any, out: Any) -> None:
    out.print(f"approvals  {len(tally.counted)} of {tally.threshold} counted: "
              f"{', '.join(tally.counted) or 'none'}")
    for name, reason in tally.rejected:
        out.print(f"  not counted {name}: {reason}", markup=False)


@ceremony.command()
@click.argument("locked", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--custodian", "custodian_id", required=True)
@click.option("--key", "key_file", type=click.Path(path_type=Path, dir_okay=False),
              help="The custodian's encrypted ML-DSA-65 key file.")
@click.option("--passphrase", default="prompt", show_default=True, metavar="SOURCE",
              help=f"Key file passphrase: {PASS_HELP}.")
@click.option("--card-label", help="Smartcard token label (ECDSA P-384 custodian key).")
@click.option("--card-pin", default="prompt", show_default=True, metavar="SOURCE")
@click.option("--module", envvar="WRITROOT_PKCS11_MODULE", metavar="PATH")
@click.option("--hours", type=click.IntRange(1, 24 * 90), default=None,
              help="Hours until the approval expires (default 72, at most the fleet policy's "
              "approval_expiry_hours).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              required=True, help="Directory to write the approval into.")
@click.option("--yes", is_flag=True, help="Do not ask for the typed ceremony id (CI).")
def approve(locked: Path, custodian_id: str, key_file: Path | None, passphrase: str,
            card_label: str | None, card_pin: str, module: str | None, hours: int | None,
            out_dir: Path, yes: bool) -> None:
    """Review a locked plan (checked again against every rule) and sign an approval of
    exactly it (its SHA-256) as one custodian."""
    from writroot.ceremony.approve import approve as approve_plan
    from writroot.ceremony.plan import revalidate
    from writroot.crypto.fingerprint import hex_groups
    from writroot.errors import BadInput, PolicyRefused
    from writroot.hsm.pin import read_pin
    from writroot.outputs import Staging

    plan_doc = revalidate(locked, _now())
    if not yes:
        err = console(stderr=True)
        _review(plan_doc, err)
        typed = click.prompt(f"type the ceremony id ({plan_doc.ceremony}) to approve it",
                             default="", show_default=False, err=True)
        if typed != plan_doc.ceremony:
            raise PolicyRefused("not confirmed; nothing was signed", "approve")
    name = f"{plan_doc.ceremony}.approval.{custodian_id}.dsse.json"
    if key_file is not None and card_label is None:
        from writroot.quorum.custodian import load_file_key

        signer = load_file_key(key_file, read_pin(passphrase, "key passphrase"))
        envelope = approve_plan(plan_doc, custodian_id, signer, _now(), hours)
    elif card_label is not None and key_file is None:
        from writroot.hsm.token import TokenSpec, default_module, open_session
        from writroot.quorum.custodian import load_card_key

        spec = TokenSpec(module or default_module(), card_label, None, card_pin)
        with open_session(spec, rw=False) as session:
            envelope = approve_plan(plan_doc, custodian_id, load_card_key(session, custodian_id),
                                    _now(), hours)
    else:
        raise BadInput("give exactly one of --key and --card-label", "approve")
    with Staging(out_dir) as stage:
        stage.write(name, envelope.dumps())
    console().print(f"{custodian_id} approved plan {hex_groups(plan_doc.sha256)} -> "
                    f"{out_dir / name}")


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
    """Count the quorum, then execute the locked plan on the HSM; all outputs or none."""
    from writroot.ceremony.host import load_host_profile
    from writroot.ceremony.runner import run as run_plan

    out = console() if not as_json else None
    host = load_host_profile(host_file)

    def confirm(plan_doc: Any) -> bool:
        if yes:
            return True
        if out is not None:
            _review(plan_doc, out)
        typed = click.prompt(f"type the ceremony id ({plan_doc.ceremony}) to sign",
                             default="", show_default=False)
        return bool(typed == plan_doc.ceremony)

    from contextlib import ExitStack

    with ExitStack() as stack:
        say = _progress(stack, out)
        from writroot.recovery.handout import ConsoleHandout, FileHandout
        from writroot.recovery.session import RecoveryIO

        handout = FileHandout(shares_out) if shares_out else ConsoleHandout(console(True))
        result = run_plan(locked, list(approvals), host, out_dir, confirm=confirm,
                          allow_network=allow_network, say=say,
                          recovery=RecoveryIO(handout))
    summary = {"out": str(result.out_dir), "signer_keyid": result.signer_keyid,
               "quorum": result.tally.to_json(), "outputs": result.outputs,
               "network_interfaces_up": result.network}
    if as_json:
        print_json(summary)
        return
    assert out is not None
    _print_tally(result.tally, out)
    for name in result.outputs:
        out.print(f"  wrote {result.out_dir / name}")
    sys.stdout.flush()


def _progress(stack: Any, out: Any) -> Any:
    """A rich progress bar over the plan's operations (an SLH-DSA-SHA2-256s signature takes
    most of a second); plain step lines when not on a terminal; nothing with --json."""
    if out is None:
        return lambda _message: None
    if not out.is_terminal:
        return lambda message: out.print(f"- {message}")
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = stack.enter_context(Progress(TextColumn("{task.description}"), BarColumn(),
                                            TimeElapsedColumn(), console=out))
    task = progress.add_task("ceremony", total=None)

    def say(message: str) -> None:
        if message.startswith("operation "):
            done, total = message.split()[1].rstrip(":").split("/")
            progress.update(task, total=int(total), completed=int(done) - 1)
        progress.update(task, description=message)
        progress.console.print(f"- {message}")

    return say


@click.group()
def custodian() -> None:
    """Custodian approval keys and enrolment."""


@custodian.command()
@click.option("--id", "custodian_id", required=True)
@click.option("--name", required=True)
@click.option("--fleet", required=True)
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              required=True)
@click.option("--passphrase", default="prompt", show_default=True, metavar="SOURCE",
              help=f"Encrypts the ML-DSA-65 key file: {PASS_HELP}.")
@click.option("--card-label", help="Make an ECDSA P-384 key on this smartcard token instead.")
@click.option("--card-pin", default="prompt", show_default=True, metavar="SOURCE")
@click.option("--module", envvar="WRITROOT_PKCS11_MODULE", metavar="PATH")
def keygen(custodian_id: str, name: str, fleet: str, out_dir: Path, passphrase: str,
           card_label: str | None, card_pin: str, module: str | None) -> None:
    """Make a custodian key and its self-signed enrolment statement."""
    from writroot.crypto.fingerprint import hex_groups, pgp_words
    from writroot.hsm.pin import read_pin
    from writroot.outputs import Staging
    from writroot.quorum.enrol import enrol
    from writroot.statements import schema

    schema.name(custodian_id, "--id")
    out_dir.mkdir(parents=True, exist_ok=True)
    if card_label:
        from writroot.hsm.token import TokenSpec, default_module, open_session
        from writroot.quorum.custodian import create_card_key

        spec = TokenSpec(module or default_module(), card_label, None, card_pin)
        with open_session(spec, rw=True) as session:
            signer: Any = create_card_key(session, custodian_id)
            envelope = enrol(signer, fleet, custodian_id, name, _now())
    else:
        from writroot.quorum.custodian import create_file_key, load_file_key

        secret = read_pin(passphrase, "new key passphrase")
        key_path = out_dir / f"{custodian_id}.key.pem"
        create_file_key(key_path, bytearray(secret))
        signer = load_file_key(key_path, secret)
        envelope = enrol(signer, fleet, custodian_id, name, _now())
    with Staging(out_dir) as stage:
        stage.write(f"{custodian_id}.enrolment.dsse.json", envelope.dumps())
        stage.write(f"{custodian_id}.pub.pem", signer.key.pem.encode())
    out = console()
    out.print(f"custodian {custodian_id} ({signer.key.algorithm.name}) enrolled")
    out.print(f"  keyid      {hex_groups(signer.key.keyid)}")
    out.print(f"  PGP words  {pgp_words(bytes.fromhex(signer.key.keyid))}")
