"""The `writroot` command: a thin click shell; subcommands are imported only when run."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Any, NoReturn

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
    "token": ("writroot.cli.token", "token", "Set up a fresh token: SO PIN and user PIN, "
              "optionally split into shares at once."),
    "bundle": ("writroot.cli.bundle", "bundle", "Export, import and inspect air-gap transfer "
               "bundles."),
    "recovery": ("writroot.cli.recovery", "recovery", "Recovery shares: check, restore, rehearse."),
    "publish": ("writroot.cli.publish", "publish", "Build the distribution set and the audit "
                "package from ceremony outputs."),
    "witness": ("writroot.cli.witness", "witness", "Cosign log checkpoints as an offline "
                "witness; refuse rollbacks and split views with evidence."),
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
@click.option("--debug", is_flag=True, help="On an error, also print the Python traceback "
              "(or set WRITROOT_DEBUG=1).")
def cli(debug: bool) -> None:
    """writroot: offline trust-root ceremonies for a federation's SLH-DSA fleet root.

    Exit codes: 0 success; 1 verification failed or policy refused; 2 bad usage or bad
    input; 3 HSM or token error; 4 quorum not met.
    """


#: The longest error line: errors quote excerpts of inputs, this is the backstop.
MAX_ERROR_CHARS = 600


def _debugging(args: list[str]) -> bool:
    if os.environ.get("WRITROOT_DEBUG", "") not in ("", "0"):
        return True
    for arg in args:
        if arg == "--debug":
            return True
        if not arg.startswith("-"):
            return False
    return False


def _fail(message: str, code: int, debug: bool) -> NoReturn:
    """The one line a user sees for any failure; the traceback only when debugging."""
    if debug:
        traceback.print_exc()
    from writroot.display import inert

    line = inert(" ".join(message.split())) or "unknown error"  # names come from inputs
    if len(line) > MAX_ERROR_CHARS:
        line = line[:MAX_ERROR_CHARS] + "..."
    try:
        sys.stderr.write(f"writroot: error: {line} (exit {code})\n")
        sys.stderr.flush()
    except OSError:
        pass
    sys.exit(code)


def _hsm_fault(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] == "pkcs11"


def main(argv: list[str] | None = None) -> Any:
    """The console entry point: no Python traceback ever reaches a user (see --debug)."""
    from writroot.errors import EXIT_HSM, EXIT_USAGE, EXIT_VERIFY, WritrootError

    args = sys.argv[1:] if argv is None else argv
    debug = _debugging(args)
    try:
        return cli.main(args=args, prog_name="writroot", standalone_mode=False)
    except WritrootError as exc:
        _fail(str(exc), exc.exit_code, debug)
    except click.exceptions.Abort:
        _fail("aborted; nothing was written", EXIT_USAGE, debug)
    except click.ClickException as exc:
        if debug:
            traceback.print_exc()
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted; nothing was written", EXIT_USAGE, debug)
    except MemoryError:
        _fail("out of memory", EXIT_USAGE, debug)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}", EXIT_USAGE, debug)
    except Exception as exc:  # the last line of defence: one line, never a traceback
        name = type(exc).__name__
        if _hsm_fault(exc):
            _fail(f"PKCS#11 token error: {name} {exc}".strip(), EXIT_HSM, debug)
        _fail(f"internal fault: {name}: {exc} (run with --debug for details)", EXIT_VERIFY,
              debug)
