"""`writroot hsm`: token facts, PQC mechanisms, custody mode and the writroot keys on a token."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from writroot.cli.common import console, json_option, print_json, shares_pin, token_options
from writroot.quorum.pinhandout import SHARES_OUT_HELP


@click.group()
def hsm() -> None:
    """Inspect tokens and manage keys in custody."""


def _spec(module: str | None, token_label: str | None, token_serial: str | None,
          pin_source: str) -> object:
    from writroot.hsm.token import TokenSpec, default_module

    return TokenSpec(module or default_module(), token_label, token_serial, pin_source)


@hsm.command()
@token_options
@click.option("--login/--no-login", default=True, show_default=True,
              help="Log in to list keys, spent plans and the key-encryption key (writroot's "
              "records are private objects); --no-login shows only the token and any planted "
              "public objects.")
@click.option("--probe/--no-probe", default=True, show_default=True,
              help="Logged in, on a token that lists PKCS#11 3.2 PQC mechanisms: generate a "
              "throwaway session key pair per algorithm, sign, verify independently and destroy "
              "it, to show what works and each deviation from the specification.")
@json_option
def info(module: str | None, token_label: str | None, token_serial: str | None,
         pin_shares: tuple[str, ...], pin_source: str, login: bool, probe: bool,
         as_json: bool) -> None:
    """Show the token, its PQC mechanisms, the custody mode and writroot keys on it.

    Exit 3 when the token lists a PQC mechanism it then cannot use (after the report)."""
    from writroot.hsm.custody import Custody
    from writroot.hsm.nativeinfo import native_report, probe_failure
    from writroot.hsm.token import TokenSpec, pin_state, token_facts

    spec = _spec(module, token_label, token_serial, pin_source)
    assert isinstance(spec, TokenSpec)
    with _session(spec, pin_shares, rw=False, login=login) as session:
        custody = Custody(session, spec.module)
        flags = int(session.token.flags)
        report: dict[str, Any] = {
            "token": token_facts(session.token),
            "pin": {"user": pin_state(flags, "user"), "so": pin_state(flags, "so")},
            "module": spec.module,
            **native_report(custody, probe and login),
            "logged_in": login,
            "planted": [{"label": p.label, "kind": p.kind} for p in custody.planted()],
        }
        if login:
            report.update(_inventory(custody))
            report["deviations"] += [d for d in custody.deviations
                                     if d not in report["deviations"]]
            try:
                report["kek"] = custody.kek_attributes()
            except Exception as exc:  # no KEK yet is a fact to show, not a failure
                report["kek"] = {"error": str(exc)}
    if as_json:
        print_json(report)
    else:
        _print_info(report)
    failure = probe_failure(report, str(report["token"]["label"]))
    if failure is not None:
        raise failure


@contextmanager
def _session(spec: Any, pin_shares: tuple[str, ...], rw: bool,
             login: bool = True) -> Iterator[Any]:
    """A session logged in with --pin, or with the PIN rebuilt from --pin-shares."""
    from writroot.crypto.keys import wipe
    from writroot.hsm.token import open_session

    pin = shares_pin(pin_shares) if login else None
    try:
        with open_session(spec, rw=rw, login=login, pin_bytes=pin) as session:
            wipe(pin)
            yield session
    finally:
        wipe(pin)


def _inventory(custody: Any) -> dict[str, Any]:
    """Keys with their status, records that do not parse, spent plans, retired keys."""
    from writroot.hsm.nativeinfo import private_key_state

    records = custody.keys()
    superseded = {r.supersedes for r in records if r.supersedes}
    spent: dict[str, bool] = {}
    keys = []
    for r in records:
        status = "active"
        if r.keyid in superseded:
            status = "superseded"
        elif r.plan_sha256:
            if r.plan_sha256 not in spent:
                try:
                    spent[r.plan_sha256] = custody.is_spent(r.plan_sha256)
                except Exception:
                    spent[r.plan_sha256] = True
            if not spent[r.plan_sha256]:
                status = "unpublished"
        keys.append({"label": r.label, "role": r.role, "algorithm": r.key.algorithm.name,
                     "keyid": r.keyid, "custody": r.custody, "created_at": r.created_at,
                     "status": status, "recovery": _recovery(r),
                     "private_key": private_key_state(custody, r),
                     **({"plan_sha256": r.plan_sha256} if r.plan_sha256 else {})})
    retired = custody.retired()
    plans = custody.spent_plans()
    return {
        "keys": keys,
        "unreadable_records": [{"label": label, "problem": why}
                               for label, why in custody.problems],
        "spent_plans": [{"plan_sha256": p.plan_sha256, "state": p.state, "out": p.out,
                         "at": p.at} for p in plans],
        "retired_keys": sorted(retired),
    }


def _recovery(record: Any) -> str:
    """A key's writroot recovery split, or why it has none (docs/custody.md "Recovery")."""
    if record.recovery_split:
        return str(record.recovery_split)
    if record.custody == "native":
        return "none: native key, use the token vendor's backup"
    return "none"


def _print_info(report: dict[str, Any]) -> None:
    """Plain lines, one fact per line and each keyid whole on one line: read the same on a
    terminal, in a log or through a pipe (no table to squeeze)."""
    from writroot.crypto.fingerprint import hex_groups
    from writroot.hsm.nativeinfo import print_native

    out = console()
    token = report["token"]
    assert isinstance(token, dict)
    out.print(f"token    {token['label']}  serial {token['serial']}  "
              f"{token['manufacturer']} {token['model']} fw {token['firmware']}", markup=False)
    out.print(f"module   {report['module']}  (Cryptoki {token.get('cryptoki') or '?'})",
              markup=False)
    pins = report.get("pin", {})
    out.print(f"PINs     user PIN: {pins.get('user') or 'no failed tries reported'}; SO PIN: "
              f"{pins.get('so') or 'no failed tries reported'}", markup=False)
    pqc = report["pqc_mechanisms"]
    out.print(f"PQC      {', '.join(pqc) if isinstance(pqc, list) and pqc else 'none advertised'}",
              markup=False)
    custody = report["custody"]
    assert isinstance(custody, dict)
    out.print("custody  " + ", ".join(f"{k}: {v}" for k, v in custody.items()), markup=False)
    print_native(out, report)
    for p in report["planted"]:
        out.print(f"PLANTED  public {p['kind']} {p['label']!r}: made without the PIN; "
                  "writroot ignores it — investigate and destroy it", markup=False)
    if not report["logged_in"]:
        out.print("not logged in: writroot's keys are private objects (log in to list them)")
        return
    keys = report["keys"]
    assert isinstance(keys, list)
    if not keys:
        out.print("keys     no writroot keys on this token", markup=False)
    for k in keys:
        out.print(f"key      {k['label']!r}: {k['role']} {k['algorithm']}, {k['custody']} "
                  f"custody, created {k['created_at']}, {k['status']}", markup=False)
        out.print(f"  keyid      {hex_groups(k['keyid'])}", markup=False)
        out.print(f"  recovery   {k['recovery']}", markup=False)
        if k["custody"] == "native":
            out.print(f"  private    {k['private_key']}", markup=False)
    for k in keys:
        if k["status"] == "superseded":
            out.print(f"SUPERSEDED {k['label']!r} is still on this token and can sign; retire it "
                      "in a retire-key ceremony", markup=False)
    for k in keys:
        if k["recovery"].startswith("none") and k["role"] in ("fleet-root", "regional-root"):
            out.print(f"NO WRITROOT RECOVERY for {k['label']!r} ({k['recovery']})",
                      markup=False)
    for bad in report["unreadable_records"]:
        out.print(f"UNREADABLE record {bad['label']!r}: {bad['problem']} (skipped)", markup=False)
    for plan in report["spent_plans"]:
        out.print(f"spent    plan {plan['plan_sha256']} {plan['state']} {plan['at']} -> "
                  f"{plan['out']}", markup=False)
    if report["retired_keys"]:
        out.print(f"retired  {', '.join(report['retired_keys'])}", markup=False)
    if "kek" in report:
        out.print(f"KEK      {kek_words(report['kek'])}", markup=False)


def kek_words(kek: dict[str, Any]) -> str:
    """The key-encryption key's attributes in words; what would weaken it in capitals."""
    if "error" in kek:
        return f"none yet ({kek['error']}); the first wrapped key makes it"
    facts = [
        f"AES-{8 * int(kek['bytes'])}",
        "sensitive" if kek["sensitive"] else "NOT SENSITIVE",
        "never extractable" if kek["never_extractable"] else
        ("not extractable now, but WAS EXTRACTABLE" if not kek["extractable"] else "EXTRACTABLE"),
        "generated on the token" if kek["local"] else "IMPORTED (not generated on the token)",
        "a token object" if kek["token"] else "A SESSION OBJECT",
        "private" if kek["private"] else "PUBLIC (readable without the PIN)",
        "not modifiable" if not kek["modifiable"] else "MODIFIABLE",
    ]
    if not kek["always_sensitive"] and kek["sensitive"]:
        facts[1] = "sensitive now, but WAS NOT ALWAYS"
    return ", ".join(facts) + f"; check value {kek['check_value']}"


@hsm.command()
@token_options
@click.option("--algorithm", default="SLH-DSA-SHA2-256s", show_default=True,
              help="Algorithm of the new key: SLH-DSA-SHA2-256s, SLH-DSA-SHA2-256f (tests) "
              "or ML-DSA-87, as the fleet policy allows.")
@click.option("--role", type=click.Choice(["fleet-root", "regional-root"]), required=True,
              help="What the key is for: the fleet root or a regional root.")
@click.option("--label", required=True, help="Label of the new key (must not exist).")
@click.option("--custody", "custody_mode", type=click.Choice(["auto", "native", "wrapped"]),
              default="auto", show_default=True,
              help="native: a non-extractable key in the token; wrapped: sealed under the "
              "token's KEK (custody.md); auto: native where the token supports it.")
@click.option("--backup-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Also write the sealed key (it opens only on this token) here.")
@json_option
def keygen(module: str | None, token_label: str | None, token_serial: str | None,
           pin_shares: tuple[str, ...], pin_source: str, algorithm: str, role: str, label: str,
           custody_mode: str, backup_dir: Path | None, as_json: bool) -> None:
    """Generate a key in custody on the token and print its keyid."""
    from writroot.crypto.algorithms import by_name
    from writroot.crypto.fingerprint import hex_groups, pgp_words
    from writroot.hsm.custody import Custody
    from writroot.hsm.token import TokenSpec

    alg = by_name(algorithm, "--algorithm")
    spec = _spec(module, token_label, token_serial, pin_source)
    assert isinstance(spec, TokenSpec)
    with _session(spec, pin_shares, rw=True) as session:
        record = Custody(session, spec.module).generate(alg, role, label, custody_mode,
                                                        backup_dir)
    if as_json:
        from writroot.ceremony.review import fingerprint

        print_json({**record.public_json(), "fingerprint": fingerprint(record.keyid)})
        return
    out = console()
    out.print(f"generated {alg.name} {role} key {label!r} ({record.custody} custody)")
    out.print(f"  keyid      {hex_groups(record.keyid)}")
    out.print(f"  PGP words  {pgp_words(bytes.fromhex(record.keyid))}")


@hsm.command("export-public")
@token_options
@click.option("--keyid", required=True,
              help="The key's keyid: 64 hex digits, in groups of four, or its PGP words.")
@click.option("--out", "out_path", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="New PEM file to write.")
@json_option
def export_public(module: str | None, token_label: str | None, token_serial: str | None,
                  pin_shares: tuple[str, ...], pin_source: str, keyid: str, out_path: Path,
                  as_json: bool) -> None:
    """Write a key's PEM public key (SPKI) to a new file."""
    from writroot.ceremony.review import fingerprint
    from writroot.crypto.fingerprint import normalise
    from writroot.hsm.custody import Custody
    from writroot.hsm.token import TokenSpec
    from writroot.outputs import check_destination, publish_file

    spec = _spec(module, token_label, token_serial, pin_source)
    assert isinstance(spec, TokenSpec)
    check_destination(out_path)
    with _session(spec, pin_shares, rw=False) as session:
        matches = [r for r in Custody(session, spec.module).keys() if r.keyid == normalise(keyid)]
    if not matches:
        from writroot.errors import HSMError

        raise HSMError(f"no writroot key with keyid {keyid} on this token")
    publish_file(out_path, matches[0].key.pem.encode())
    fp = fingerprint(matches[0].keyid)
    if as_json:
        print_json({"out": str(out_path), "keyid": fp})
        return
    out = console()
    out.print(f"wrote {out_path}", markup=False)
    out.print(f"  keyid      {fp['groups']}", markup=False)
    out.print(f"  PGP words  {fp['words']}", markup=False)


@hsm.command("split-pin")
@token_options
@click.option("--so-pin", "so_pin_source", metavar="SOURCE",
              help="Set the new PIN as security officer (C_InitPIN), for tokens that refuse "
              "C_SetPIN (freehsm-c 2.0): prompt, env:VAR or file:PATH.")
@click.option("--threshold", type=click.IntRange(1, 16), required=True, help="M shares rebuild it.")
@click.option("--shares", type=click.IntRange(2, 16), required=True, help="N shares in all.")
@click.option("--yes", is_flag=True, help="Do not ask for the typed token label (CI).")
@click.option("--shares-out", type=click.Path(path_type=Path, file_okay=False),
              help=SHARES_OUT_HELP)
@json_option
def split_pin(module: str | None, token_label: str | None, token_serial: str | None,
              pin_shares: tuple[str, ...], pin_source: str, so_pin_source: str | None,
              threshold: int, shares: int, yes: bool, shares_out: Path | None,
              as_json: bool) -> None:
    """Replace the token's user PIN with a random one split into M-of-N SLIP-39 shares.

    The new PIN is never shown or stored: each share is shown once, to its holder alone on a
    cleared screen, and two of its words are typed back before the next holder is called
    (or, with --shares-out, each share goes to its own mode-600 file); only then is the PIN
    changed. `ceremony run` rebuilds it in memory from M shares (host profile pin_shares),
    and every hsm command takes them with --pin-shares. Asks for the token label first.
    """
    _replace_pin(module, token_label, token_serial, pin_shares, pin_source, so_pin_source,
                 threshold, shares, yes, shares_out, as_json)


@hsm.command("resplit")
@token_options
@click.option("--so-pin", "so_pin_source", metavar="SOURCE",
              help="Set the new PIN as security officer (C_InitPIN), for tokens that refuse "
              "C_SetPIN (freehsm-c 2.0): prompt, env:VAR or file:PATH.")
@click.option("--threshold", type=click.IntRange(1, 16), required=True,
              help="M shares of the new split rebuild the PIN.")
@click.option("--shares", type=click.IntRange(2, 16), required=True,
              help="N shares in the new split (one per member of the new roster).")
@click.option("--yes", is_flag=True, help="Do not ask for the typed token label (CI).")
@click.option("--shares-out", type=click.Path(path_type=Path, file_okay=False),
              help=SHARES_OUT_HELP)
@json_option
def resplit(module: str | None, token_label: str | None, token_serial: str | None,
            pin_shares: tuple[str, ...], pin_source: str, so_pin_source: str | None,
            threshold: int, shares: int, yes: bool, shares_out: Path | None,
            as_json: bool) -> None:
    """Re-split the token PIN for a new roster: M old shares (--pin-shares) log in, the PIN is
    replaced by a new random one, and its new M-of-N shares are handed out once, one holder at
    a time, as by split-pin. Every old share is dead afterwards (it rebuilds a PIN the token
    no longer has)."""
    from writroot.errors import BadInput

    if not pin_shares:
        raise BadInput("give the old shares with --pin-shares (one per share)", "--pin-shares")
    _replace_pin(module, token_label, token_serial, pin_shares, pin_source, so_pin_source,
                 threshold, shares, yes, shares_out, as_json)


def _replace_pin(module: str | None, token_label: str | None, token_serial: str | None,
                 pin_shares: tuple[str, ...], pin_source: str, so_pin_source: str | None,
                 threshold: int, shares: int, yes: bool, shares_out: Path | None,
                 as_json: bool) -> None:

    from writroot.crypto.keys import wipe
    from writroot.errors import BadInput, PolicyRefused
    from writroot.hsm.pin import read_pin
    from writroot.hsm.softhsm import token_named
    from writroot.hsm.token import TokenSpec, find_token, open_session
    from writroot.quorum import pinhandout
    from writroot.quorum.splitpin import check_token_takes_split_pin, split_id, split_new_pin

    if threshold > shares:
        raise BadInput("threshold must not exceed the number of shares", "--threshold")
    spec = _spec(module, token_label, token_serial, pin_source)
    assert isinstance(spec, TokenSpec)
    ranged = token_named(spec.module, spec.label, spec.serial)  # before python-pkcs11 loads it
    label = str(find_token(spec).label).strip()
    check_token_takes_split_pin(ranged, label)  # what the token cannot take: exit 3 first
    pinhandout.check_out(shares_out, as_json)
    if not yes:
        typed = click.prompt(f"this replaces the user PIN of token {label!r}; the old PIN and "
                             f"its shares stop working. Type the token label ({label}) to go "
                             "on", default="", show_default=False, err=True)
        if typed != label:
            raise PolicyRefused("not confirmed; the PIN is unchanged", "split-pin")
    old = shares_pin(pin_shares) or read_pin(spec.pin_source)
    so_pin = read_pin(so_pin_source, "SO PIN") if so_pin_source else None
    new, mnemonics = split_new_pin(threshold, shares)
    split = split_id(mnemonics[0])
    out = console()
    files: list[str] = []

    def change() -> None:
        with open_session(spec, rw=True, pin_bytes=old) as session:  # the old PIN logs in
            changed = _set_pin(session, old, new, so_pin is not None)
        if not changed:
            assert so_pin is not None
            _init_pin_as_so(spec, so_pin, new)

    try:
        # The old PIN logs in first; the shares are handed out before the PIN changes, so a
        # handout that stops leaves the old PIN (and its shares) working.
        with open_session(spec, rw=True, pin_bytes=old):
            pass
        if shares_out is not None:
            with pinhandout.staged(mnemonics, split, shares_out) as files:
                change()
        else:
            out.print(f"The PIN of token {label} will be split {threshold} of {shares} "
                      f"(split {split}); it changes once every holder has their share.",
                      markup=False)
            pinhandout.show(mnemonics, split, threshold, label, out)
            change()
    finally:
        wipe(old)
        wipe(new)
        wipe(so_pin)
        mnemonics.clear()
    if as_json:
        print_json({"token": label, "threshold": threshold, "split": split,
                    "share_files": files})
        return
    out.print(f"The PIN of token {label} is now split {threshold} of {shares} (split {split}).",
              markup=False)
    for path in files:
        out.print(f"  share file (mode 600): {path}", markup=False)
    if files:
        out.print("Give each file to its holder only; delete it here once copied.",
                  markup=False)


def _set_pin(session: Any, old: bytearray, new: bytearray, as_so_next: bool) -> bool:
    """C_SetPIN in the user's session. False when the token refuses it while logged in
    and the SO may set it instead (freehsm-c 2.0.0's C_SetPIN re-logs in the role it needs
    logged in, so it always answers CKR_USER_ALREADY_LOGGED_IN)."""
    import pkcs11

    from writroot.errors import HSMError

    try:
        session.set_pin(old.decode(), new.decode())
    except pkcs11.UserAlreadyLoggedIn:
        if as_so_next:
            return False
        raise HSMError("cannot change the PIN: the token refuses C_SetPIN in a logged-in "
                       "session (UserAlreadyLoggedIn; freehsm-c 2.0 does): give --so-pin to "
                       "set the new PIN as security officer") from None
    except pkcs11.PKCS11Error as exc:
        raise HSMError(f"cannot change the PIN: {type(exc).__name__}") from None
    return True


def _init_pin_as_so(spec: Any, so_pin: bytearray, new: bytearray) -> None:
    """C_InitPIN in an SO session: the security officer sets the user PIN."""
    import pkcs11

    from writroot.errors import HSMError
    from writroot.hsm.token import find_token

    token = find_token(spec)
    try:
        # python-pkcs11 takes PINs as str; those copies cannot be wiped.
        with token.open(rw=True, so_pin=so_pin.decode()) as session:
            session.init_pin(new.decode())
    except pkcs11.PinIncorrect:
        raise HSMError(f"SO PIN incorrect for token {token.label!r}; the PIN is unchanged"
                       ) from None
    except pkcs11.PKCS11Error as exc:
        raise HSMError(f"cannot set the PIN as security officer: {type(exc).__name__}"
                       ) from None


@hsm.command("check-shares")
@token_options
@json_option
def check_shares(module: str | None, token_label: str | None, token_serial: str | None,
                 pin_shares: tuple[str, ...], pin_source: str, as_json: bool) -> None:
    """Check that the given PIN shares rebuild the token PIN: rebuilt in memory and proved by
    logging in once (a wrong PIN uses up a retry only if the shares combine to a wrong one)."""
    from writroot.errors import BadInput
    from writroot.hsm.token import TokenSpec, token_facts

    if not pin_shares:
        raise BadInput("give the shares to check with --pin-shares (one per share)",
                       "--pin-shares")
    spec = _spec(module, token_label, token_serial, pin_source)
    assert isinstance(spec, TokenSpec)
    with _session(spec, pin_shares, rw=False) as session:
        token = token_facts(session.token)
    if as_json:
        print_json({"token": token["label"], "serial": token["serial"],
                    "shares": len(pin_shares), "rebuild_pin": True})
        return
    console().print(f"the {len(pin_shares)} shares rebuild the PIN of token {token['label']} "
                    f"(serial {token['serial']}): logged in", markup=False)
