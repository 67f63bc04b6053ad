"""Options and output helpers shared by the commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON object on stdout instead of text.")(f)


def token_options(f: F) -> F:
    from writroot.hsm.pin import PIN_SOURCE_HELP

    f = click.option("--pin", "pin_source", default="prompt", show_default=True,
                     metavar="SOURCE", help=f"Where the user PIN comes from: {PIN_SOURCE_HELP}."
                     )(f)
    f = click.option("--pin-shares", "pin_shares", multiple=True, metavar="SOURCE",
                     help="After hsm split-pin: one PIN share source per share typed in "
                     f"(repeat the option M times) instead of --pin; {PIN_SOURCE_HELP}.")(f)
    f = click.option("--token-serial", help="Token serial number.")(f)
    f = click.option("--token-label", help="Token label.")(f)
    f = click.option("--module", envvar="WRITROOT_PKCS11_MODULE", metavar="PATH",
                     help="PKCS#11 module (default: SoftHSM2; env WRITROOT_PKCS11_MODULE).")(f)
    return f


def shares_pin(pin_shares: tuple[str, ...]) -> bytearray | None:
    """The token PIN rebuilt in memory from share sources (None: use --pin). The caller
    wipes it."""
    if not pin_shares:
        return None
    from writroot.quorum.splitpin import combine_pin

    return combine_pin(list(pin_shares))


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


PIPE_WIDTH = 120  # a keyid in hex groups (79) beside a field name, PGP words in two lines


def console(stderr: bool = False) -> Any:
    """Rich output for a person. Without a terminal (a log, a pipe, CI) there is no width to
    fit: unless COLUMNS says otherwise, take a wide one, so a table is never squeezed into 80
    columns and an identifier never folded (commands print plain lines there anyway)."""
    import os

    from rich.console import Console

    out = Console(highlight=False, soft_wrap=True, stderr=stderr)
    if not out.is_terminal and not os.environ.get("COLUMNS"):
        out.width = PIPE_WIDTH
    return out
