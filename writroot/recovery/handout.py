"""Giving each recovery-share holder their share, and nobody else.

- `FileHandout`: one file per holder, encrypted under the holder's passphrase
  (`sharefile`), published together into a new directory. Passphrases come from
  WRITROOT_SHARE_PASSPHRASE_<HOLDER> or are asked for, twice, before the HSM opens.
- `ConsoleHandout`: on a terminal only. Each holder in turn types their id, sees their words
  once, types two of them back, by position chosen at random (a transcription check), and
  the screen and its scrollback are cleared before the next holder is called (`show_once`,
  also used for PIN shares).
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Any, Protocol

from writroot.crypto.keys import wipe
from writroot.errors import BadInput, PolicyRefused
from writroot.recovery.split import Split


class Handout(Protocol):
    def check(self, holders: list[str]) -> None:
        """Before the HSM opens: everything each holder will need is at hand."""

    def give(self, split: Split) -> None:
        """Hand each holder their share (staged; nothing public until `publish`)."""

    def publish(self) -> None:
        """Make staged share files visible (just before the ceremony publishes)."""

    def close(self) -> None:
        """Wipe what is held in memory."""


class FileHandout:
    def __init__(self, directory: Path, passphrases: dict[str, bytearray] | None = None) -> None:
        self.directory = directory
        self.passphrases: dict[str, bytearray] = dict(passphrases or {})
        self._given = passphrases is not None
        self.files: dict[str, bytes] = {}

    def check(self, holders: list[str]) -> None:
        from writroot.outputs import check_destination
        from writroot.recovery.collect import holder_passphrase

        check_destination(self.directory, "share directory")
        for holder in holders:
            if holder not in self.passphrases:
                if self._given:
                    raise BadInput(f"no passphrase for {holder}", f"passphrase for {holder}")
                self.passphrases[holder] = holder_passphrase(holder, confirm=True)
            if len(self.passphrases[holder]) < 8:
                raise BadInput(f"the passphrase for {holder}'s share is shorter than 8 "
                               "characters", f"passphrase for {holder}")

    def give(self, split: Split) -> None:
        from writroot.recovery.sharefile import encrypt

        for index, holder in enumerate(split.holders):
            name = f"{split.split_id}-{holder}.share.json"
            self.files[name] = encrypt(split.split_id, holder, index, split.shares[holder],
                                       self.passphrases[holder])

    def publish(self) -> None:
        from writroot.outputs import Staging

        if not self.files:
            return
        with Staging(self.directory) as stage:
            for name, data in sorted(self.files.items()):
                stage.write(name, data, mode=0o600)

    def close(self) -> None:
        if not self._given:
            for p in self.passphrases.values():
                wipe(p)
        self.files.clear()


CLEAR = "\x1b[H\x1b[2J\x1b[3J"  # home, clear the screen, and clear the scrollback
CHECK_TRIES = 3


def clear_screen(console: Any) -> None:
    """Clear the screen and its scrollback, so no share stays for the next holder to scroll
    back to; only on a terminal (a pipe or a log never gets control sequences)."""
    stream = getattr(console, "file", None) or sys.stdout
    if stream.isatty():
        stream.write(CLEAR)
        stream.flush()


def show_once(out: Any, call: str, holder: str | None, heading: str, words: list[str]) -> None:
    """One holder's screen: call them (they type their id, or press Enter), clear, show the
    words, ask two of them back by position (chosen at random), clear again. A wrong word is
    asked again with the share still on screen; after CHECK_TRIES the handout stops."""
    import click

    clear_screen(out)
    if holder is None:
        click.prompt(f"{call}; when only they can see the screen, press Enter", default="",
                     show_default=False, err=True)
    else:
        typed = ""
        while typed != holder:
            typed = click.prompt(f"{call}; {holder}, type your id", default="",
                                 show_default=False, err=True)
    clear_screen(out)
    out.print(heading, markup=False)
    for row in range(0, len(words), 6):
        out.print("  " + "  ".join(f"{row + i + 1:2}. {w:<10}"
                                   for i, w in enumerate(words[row:row + 6])), markup=False)
    picks = sorted(secrets.SystemRandom().sample(range(1, len(words) + 1), 2))
    for number in picks:
        for attempt in range(CHECK_TRIES):
            check = click.prompt(f"transcription check: type word {number} from your paper",
                                 hide_input=True, default="", show_default=False, err=True)
            if check.strip().lower() == words[number - 1]:
                break
            if attempt + 1 < CHECK_TRIES:
                out.print(f"word {number} does not match: compare your paper with the screen "
                          "and correct it", markup=False)
        else:
            clear_screen(out)
            raise PolicyRefused(f"the transcription check failed {CHECK_TRIES} times "
                                f"({holder or call})", "shares")
    click.prompt("press Enter to clear the screen for the next holder", default="",
                 show_default=False, err=True)
    clear_screen(out)


class ConsoleHandout:
    """Shares shown on the terminal, once, to each holder in turn."""

    def __init__(self, console: Any) -> None:
        self.console = console

    def check(self, holders: list[str]) -> None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise BadInput("recovery shares are shown only on a terminal; give --shares-out "
                           "DIR for share files", "recovery shares")

    def give(self, split: Split) -> None:
        for holder in split.holders:
            words = split.shares[holder].split()
            try:
                show_once(self.console, f"hand the console to recovery-share holder {holder}",
                          holder, f"{holder}: your share of recovery split {split.split_id} "
                          f"({split.threshold} of {len(split.holders)}). Write every word "
                          "down, in order, now: it is shown once.", words)
            except PolicyRefused as exc:
                raise PolicyRefused(f"{holder}'s transcription check failed; the run stops "
                                    "and the key is destroyed (re-run the plan)",
                                    "recovery shares") from exc
            finally:
                words.clear()

    def publish(self) -> None:
        return None

    def close(self) -> None:
        return None
