"""`writroot token init`: set up a fresh token (SO PIN and user PIN), so a runbook needs no
vendor tool. With --threshold/--shares the user PIN is random and printed only as M-of-N
SLIP-39 shares, at once."""

from __future__ import annotations

import click

from writroot.cli.common import console, json_option, print_json
from writroot.hsm.pin import PIN_SOURCE_HELP


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
              help="Make the user PIN random and print it only as shares: M rebuild it.")
@click.option("--shares", type=click.IntRange(2, 16), help="N shares in all (with --threshold).")
@json_option
def init(label: str, module: str | None, so_pin_source: str, pin_source: str,
         factory_source: str | None, threshold: int | None, shares: int | None,
         as_json: bool) -> None:
    """Initialise the first free slot as token LABEL with an SO PIN and a user PIN (each
    within the token's PIN length range; a split PIN is 32 characters, or no split)."""
    from writroot.crypto.keys import wipe
    from writroot.errors import BadInput
    from writroot.hsm import softhsm
    from writroot.hsm.pin import read_pin
    from writroot.hsm.token import default_module
    from writroot.quorum.splitpin import check_token_takes_split_pin, split_id, split_new_pin
    from writroot.statements.schema import name

    name(label, "--label")
    if (threshold is None) != (shares is None):
        raise BadInput("give both --threshold and --shares, or neither", "--threshold")
    if threshold is not None and shares is not None and threshold > shares:
        raise BadInput("threshold must not exceed the number of shares", "--threshold")
    module = module or default_module()
    free = softhsm.free_slot(module, label)  # before any PIN is asked
    if threshold is not None:
        check_token_takes_split_pin(free, label)
    factory = read_pin(factory_source, "factory SO PIN") if factory_source else None
    so_pin = read_pin(so_pin_source, "new SO PIN")
    mnemonics: list[str] = []
    try:
        if threshold is not None and shares is not None:
            user_pin, mnemonics = split_new_pin(threshold, shares)
        else:
            user_pin = read_pin(pin_source, "new user PIN")
        try:
            serial = softhsm.init_token(module, label, bytes(so_pin), bytes(user_pin), free,
                                        bytes(factory) if factory is not None else None)
        finally:
            wipe(user_pin)
    finally:
        wipe(so_pin)
        wipe(factory)
    split = split_id(mnemonics[0]) if mnemonics else None
    if as_json:
        print_json({"token": label, "serial": serial,
                    **({"threshold": threshold, "split": split, "shares": mnemonics}
                       if mnemonics else {})})
        return
    out = console()
    said = f"serial {serial}" if serial else "the token reports no serial"
    out.print(f"token {label} initialised ({said})", markup=False)
    if mnemonics:
        out.print(f"Its user PIN is split {threshold} of {shares} (split {split}). Give each "
                  "custodian one share; it is shown only now.", markup=False)
        for i, words in enumerate(mnemonics, 1):
            out.print(f"share {i} (split {split}): {words}", markup=False)
