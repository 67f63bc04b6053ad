"""`writroot token init`: set up a fresh token (SO PIN and user PIN), so a runbook needs no
vendor tool. With --threshold/--shares the user PIN is random and exists only as M-of-N
SLIP-39 shares, each shown to its holder on its own screen (or written to its own file)."""

from __future__ import annotations

from pathlib import Path

import click

from writroot.cli.common import console, json_option, print_json
from writroot.hsm.pin import PIN_SOURCE_HELP
from writroot.quorum.pinhandout import SHARES_OUT_HELP


@click.group()
def token() -> None:
    """Set up tokens: a fresh token's SO PIN and user PIN (optionally split at once)."""


@token.command()
@click.option("--label", required=True, help="Label of the new token (must not exist).")
@click.option("--module", envvar="WRITROOT_PKCS11_MODULE", metavar="PATH",
              help="PKCS#11 module (default: SoftHSM2; env WRITROOT_PKCS11_MODULE).")
@click.option("--so-pin", "so_pin_source", default="prompt", show_default=True,
              metavar="SOURCE", help=f"The new security officer PIN: {PIN_SOURCE_HELP}.")
@click.option("--pin", "pin_source", default="prompt", show_default=True, metavar="SOURCE",
              help=f"The new user PIN (not with --threshold): {PIN_SOURCE_HELP}.")
@click.option("--factory-so-pin", "factory_source", metavar="SOURCE",
              help="The SO PIN the token ships with, for a token whose C_InitToken wants it "
              "(openCryptoki: 87654321); the new SO PIN replaces it.")
@click.option("--threshold", type=click.IntRange(1, 16),
              help="Make the user PIN random and hand it out only as shares, one holder at a "
              "time: M rebuild it.")
@click.option("--shares", type=click.IntRange(2, 16), help="N shares in all (with --threshold).")
@click.option("--shares-out", type=click.Path(path_type=Path, file_okay=False),
              help=SHARES_OUT_HELP)
@json_option
def init(label: str, module: str | None, so_pin_source: str, pin_source: str,
         factory_source: str | None, threshold: int | None, shares: int | None,
         shares_out: Path | None, as_json: bool) -> None:
    """Initialise the first free slot as token LABEL with an SO PIN and a user PIN (each
    within the token's PIN length range; a split PIN is 32 characters, or no split).

    New PINs typed at a prompt are asked twice. With --threshold/--shares the user PIN is
    random: each share is shown to its holder alone, on a cleared screen, and two of its
    words are typed back before the next holder is called (or, with --shares-out, each share
    goes to its own mode-600 file)."""
    from writroot.crypto.keys import wipe
    from writroot.errors import BadInput, WritrootError
    from writroot.hsm import softhsm
    from writroot.hsm.pin import read_pin
    from writroot.hsm.token import default_module
    from writroot.quorum import pinhandout
    from writroot.quorum.splitpin import check_token_takes_split_pin, split_id, split_new_pin
    from writroot.statements.schema import name

    name(label, "--label")
    if (threshold is None) != (shares is None):
        raise BadInput("give both --threshold and --shares, or neither", "--threshold")
    if threshold is not None and shares is not None and threshold > shares:
        raise BadInput("threshold must not exceed the number of shares", "--threshold")
    if shares_out is not None and threshold is None:
        raise BadInput("--shares-out goes with --threshold and --shares", "--shares-out")
    module = module or default_module()
    free = softhsm.free_slot(module, label)  # before any PIN is asked
    if threshold is not None:
        check_token_takes_split_pin(free, label)  # what the token cannot take: exit 3 first
        pinhandout.check_out(shares_out, as_json)
    factory = read_pin(factory_source, "factory SO PIN") if factory_source else None
    so_pin = read_pin(so_pin_source, "new SO PIN", confirm=True)
    mnemonics: list[str] = []
    try:
        if threshold is not None and shares is not None:
            user_pin, mnemonics = split_new_pin(threshold, shares)
        else:
            user_pin = read_pin(pin_source, "new user PIN", confirm=True)
        try:
            serial = softhsm.init_token(module, label, bytes(so_pin), bytes(user_pin), free,
                                        bytes(factory) if factory is not None else None)
        finally:
            wipe(user_pin)
    finally:
        wipe(so_pin)
        wipe(factory)
    out = console()
    if not mnemonics:
        if as_json:
            print_json({"token": label, "serial": serial})
        else:
            out.print(f"token {label} initialised (serial {serial})", markup=False)
        return
    assert threshold is not None
    split = split_id(mnemonics[0])
    files: list[str] = []
    try:
        if shares_out is not None:
            with pinhandout.staged(mnemonics, split, shares_out) as files:
                pass
        else:
            out.print(f"token {label} initialised (serial {serial}); its user PIN is split "
                      f"{threshold} of {len(mnemonics)} (split {split})", markup=False)
            pinhandout.show(mnemonics, split, threshold, label, out)
    except WritrootError as exc:
        raise type(exc)(f"{exc.message}; token {label} is initialised but not every PIN share "
                        "was handed out, so nobody can log in: initialise it again",
                        exc.where) from None
    finally:
        mnemonics.clear()
    if as_json:
        print_json({"token": label, "serial": serial, "threshold": threshold, "split": split,
                    "share_files": files})
        return
    if files:
        out.print(f"token {label} initialised (serial {serial}); its user PIN is split "
                  f"{threshold} of {len(files)} (split {split}), one share per file (mode 600):",
                  markup=False)
        for path in files:
            out.print(f"  {path}", markup=False)
        out.print("Give each file to its holder only; delete it here once copied.",
                  markup=False)
    else:
        out.print(f"all {shares} PIN shares of token {label} handed out (serial {serial}, "
                  f"split {split}, any {threshold} rebuild the PIN)", markup=False)
