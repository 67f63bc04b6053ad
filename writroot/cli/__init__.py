"""The `writroot` command: a thin click shell; subcommands are imported only when run."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from writroot import __version__

#: name -> (module, attribute, one-line help). Help text lives here so `--help` imports nothing.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("writroot.cli.demo", "demo", "Run the whole ceremony story on throwaway SoftHSM2 "
             "tokens."),
    "verify": ("writroot.cli.verify", "verify", "Verify artifacts offline against a pinned "
               "fleet root."),
    "hsm": ("writroot.cli.hsm", "hsm", "Inspect tokens and manage keys in custody."),
    "ceremony": ("writroot.cli.ceremony", "ceremony", "Plan, approve and run quorum-gated "
                 "ceremonies."),
    "custodian": ("writroot.cli.ceremony", "custodian", "Custodian approval keys and "
                  "enrolment."),
    "audit": ("writroot.cli.audit", "audit", "Check a ceremony transcript and render a "
              "report."),
    "region": ("writroot.cli.region", "region", "The region's side: generate a regional "
               "root and export its key request."),
    "status": ("writroot.cli.status", "status", "Rotation calendar: every key's age, expiry "
               "and next rotation; overdue is loud."),
    "bundle": ("writroot.cli.bundle", "bundle", "Export, import and inspect air-gap transfer "
               "bundles."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="writroot")
def cli() -> None:
    """writroot: offline trust-root ceremonies for a federation's SLH-DSA fleet root.

    Exit codes: 0 success; 1 verification failed or policy refused; 2 bad usage or bad
    input; 3 HSM or token error; 4 quorum not met.
    """


def main(argv: list[str] | None = None) -> Any:
    from writroot.errors import WritrootError

    try:
        return cli.main(args=argv, prog_name="writroot", standalone_mode=False)
    except WritrootError as exc:
        click.echo(f"writroot: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("writroot: aborted", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
