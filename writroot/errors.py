"""A small, flat error hierarchy; each error carries the exit code DESIGN §7 documents."""

from __future__ import annotations

EXIT_OK = 0
EXIT_VERIFY = 1
EXIT_USAGE = 2
EXIT_HSM = 3
EXIT_QUORUM = 4

#: How much of an input value an error message quotes.
EXCERPT_CHARS = 60


def excerpt(value: object, cap: int = EXCERPT_CHARS) -> str:
    """An input value as an error quotes it: a Python literal (control characters and
    bidirectional overrides escaped) of at most about `cap` characters, `...` when cut."""
    text = value if isinstance(value, str) else repr(value)
    cut = text[:cap]
    while len(repr(cut)) > cap + 2:  # escapes widen a character up to ten times
        cut = cut[: max(len(cut) * 2 // 3, 1) if len(cut) > 1 else 0]
    if isinstance(value, str):
        shown = repr(cut)
    else:  # already a repr: escaped unless the object's own repr is not
        shown = cut if cut.isprintable() else repr(cut)[1:-1]
    return shown + ("..." if len(cut) < len(text) else "")


def short(text: str, cap: int = 120) -> str:
    """A message that may carry input (a parser's complaint): itself when short and printable,
    else an excerpt."""
    return text if len(text) <= cap and text.isprintable() else excerpt(text, cap)


def field_name(name: object) -> str:
    """A field name from an input, as it goes into a field path: itself when it is a plain
    short name, else an excerpt."""
    if isinstance(name, str) and 0 < len(name) <= 64 and all(
            ch.isascii() and (ch.isalnum() or ch in "_-") for ch in name):
        return name
    return excerpt(name, 24)


class WritrootError(Exception):
    """Base error. `where` names the file and field so the one-line message is actionable."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class BadInput(WritrootError):
    """Malformed, hostile or unknown input (exit 2)."""

    exit_code = EXIT_USAGE


class VerificationFailed(WritrootError):
    """A signature, chain or rule did not hold (exit 1)."""

    exit_code = EXIT_VERIFY


class PolicyRefused(WritrootError):
    """Policy forbids the operation (exit 1)."""

    exit_code = EXIT_VERIFY


class HSMError(WritrootError):
    """Token, PIN or PKCS#11 failure (exit 3)."""

    exit_code = EXIT_HSM


class QuorumNotMet(WritrootError):
    """Too few valid approvals (exit 4)."""

    exit_code = EXIT_QUORUM


class EngineUnavailable(WritrootError):
    """A requested crypto engine is not installed or cannot load (exit 2)."""

    exit_code = EXIT_USAGE


class OutputFailed(BadInput):
    """An output could not be written (disk full, read-only media, permissions) (exit 2)."""

    exit_code = EXIT_USAGE


class Interrupted(WritrootError):
    """The run was interrupted (Ctrl-C) (exit 2)."""

    exit_code = EXIT_USAGE


class EngineFault(WritrootError):
    """An engine failed (as opposed to a signature that does not verify) (exit 1)."""

    exit_code = EXIT_VERIFY
