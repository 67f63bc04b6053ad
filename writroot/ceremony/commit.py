"""The token and the disk of one ceremony run, committed together.

- Before the HSM session opens: the output directory is checked (exists in any form, dangling
  symlink, not a directory, read-only, unwritable, too little space) and a staging directory is
  made beside it (`outputs.Publication`).
- When the session opens, before any signing: a plan whose outputs were published is refused
  (the spent-plan record on the token: a plan runs once).
- Publishing: "pending: plan digest + output directory" is recorded on the token, the staging
  directory is renamed into place, then "published" is recorded. A run killed before the
  rename can be re-run; one killed after it counts as spent (its output directory holds the
  plan).
- On any failure before the rename: the keys this run generated are destroyed on the token
  (their sealed backups go with the staging directory only once the keys are gone), the
  pending record is withdrawn, the transcript records where the run stopped, and the user gets
  one line: "signed, but could not publish: ... — nothing was written; re-run the plan".
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from writroot import failpoint
from writroot.ceremony.transcript import Transcript
from writroot.errors import OutputFailed, PolicyRefused, WritrootError
from writroot.hsm.custody import Custody
from writroot.hsm.token import TokenSpec, open_session
from writroot.outputs import Publication, check_destination, publish_file


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    text = str(exc) if isinstance(exc, WritrootError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


class RunCommit:
    """Use as a context manager around the HSM part of `ceremony run`.

    `result` is the run's RunResult: its `signed` and `generated` lists say what the HSM did.
    """

    def __init__(self, plan_sha256: str, plan_where: str, out_dir: Path, transcript: Transcript,
                 result: Any) -> None:
        self.plan_sha256 = plan_sha256
        self.plan_where = plan_where
        self.out_dir = out_dir
        self.transcript = transcript
        self.result = result
        self.pub = Publication(out_dir, "output directory")
        self.custody: Custody | None = None
        self.stopped_transcript: Path | None = None

    @staticmethod
    def preflight(out_dir: Path) -> None:
        """Everything about the output directory that can be known before the HSM opens."""
        check_destination(out_dir, "output directory")

    @property
    def stage(self) -> Path:
        return self.pub.stage

    def __enter__(self) -> RunCommit:
        self.pub.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.pub.discard()

    # -- the token session --------------------------------------------------------------

    @contextmanager
    def session(self, spec: TokenSpec, pin: bytearray) -> Iterator[Any]:
        """The run's read-write session: spent plans refused on entry; on any failure the
        run's keys are destroyed while the session is still open."""
        with open_session(spec, rw=True, pin_bytes=pin) as session:
            self.custody = Custody(session, spec.module)
            self._refuse_spent(self.custody)
            try:
                yield session
            except BaseException as exc:
                converted = self._stopped(self.custody, exc)
                if converted is not None:
                    raise converted from None
                raise

    def _refuse_spent(self, custody: Custody) -> None:
        if custody.is_spent(self.plan_sha256):
            state = custody.plan_state(self.plan_sha256)
            where = f" to {state.out}" if state is not None and state.out else ""
            raise PolicyRefused(f"plan {self.plan_sha256} already ran: its outputs were "
                                f"published{where}; a plan runs once (make a new plan)",
                                self.plan_where)
        custody.forget_pending(self.plan_sha256)  # a run that stopped before its rename

    def commit(self) -> None:
        """Publish the staged outputs and record the plan spent, in that crash-safe order."""
        assert self.custody is not None
        self.custody.mark_spent(self.plan_sha256, self.out_dir.absolute(), "pending")
        failpoint.hit("before-publish")
        self.pub.commit()
        failpoint.hit("after-publish")
        self.custody.mark_spent(self.plan_sha256, self.out_dir.absolute(), "published")

    # -- failure ------------------------------------------------------------------------

    def _stopped(self, custody: Custody, exc: BaseException) -> BaseException | None:
        signed = len(self.result.signed)
        generated = list(self.result.generated)
        hsm_worked = bool(signed or generated)
        if self.pub.committed:
            return None  # published: the error is about the spent-plan mark, say it as is
        destroyed, kept = [], []
        for record in generated:
            try:
                custody.destroy_key(record)
                destroyed.append(record.keyid)
            except Exception:
                kept.append(record.keyid)
        if kept:
            self.pub.keep_stage = True  # never delete a sealed backup while its key exists
        with contextlib.suppress(Exception):  # the first error is the one to report
            custody.forget_pending(self.plan_sha256)
        reason = _one_line(exc)
        self.transcript.record("stopped", error=reason, signed=signed,
                               keys_destroyed=destroyed, keys_kept=kept, published=False)
        if hsm_worked:
            self._save_transcript()
        if isinstance(exc, KeyboardInterrupt):
            return None
        note = ""
        if kept:
            note = (f"; keys {', '.join(kept)} could not be removed from the token: their "
                    f"sealed backups stay in {self.pub.stage}")
        if self.stopped_transcript is not None:
            note += f"; the stopped run's transcript is {self.stopped_transcript}"
        if hsm_worked and isinstance(exc, (OSError, OutputFailed)):
            return OutputFailed(f"signed, but could not publish: {reason} — nothing was "
                                f"written; re-run the plan{note}", str(self.out_dir))
        if isinstance(exc, OSError):
            return OutputFailed(f"cannot write: {reason}; nothing was written{note}",
                                str(self.out_dir))
        if note and isinstance(exc, WritrootError):
            return type(exc)(f"{exc.message}{note}", exc.where)
        return None

    def _save_transcript(self) -> None:
        """Best effort: where the run stopped, beside the output directory it never made."""
        target = self.out_dir.parent / f"{self.out_dir.name}.stopped.transcript.jsonl"
        if os.path.lexists(target):
            return
        try:
            publish_file(target, self.transcript.dumps())
            self.stopped_transcript = target
        except Exception:
            self.stopped_transcript = None
