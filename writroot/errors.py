"""A small, flat error hierarchy; each error carries the exit code DESIGN §7 documents."""

from __future__ import annotations

EXIT_OK = 0
EXIT_VERIFY = 1
EXIT_USAGE = 2
EXIT_HSM = 3
EXIT_QUORUM = 4


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
