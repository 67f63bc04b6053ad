"""Named failpoints: the one fault-injection facility, for crash and failure tests.

A failpoint fires only when the environment names it *and* arms it:

    WRITROOT_FAILPOINT=<point>:<action>
    WRITROOT_FAILPOINT_ARMED=yes-i-am-testing-writroot

Actions: ``kill`` (SIGKILL this process: a power cut), ``enospc`` (raise OSError ENOSPC: a
full disk), ``interrupt`` (raise KeyboardInterrupt: Ctrl-C), ``fault`` (raise RuntimeError: an
engine or library fault). An unknown point or action, or a point named but not armed, is
refused loudly rather than ignored. docs/custody.md lists the points.
"""

from __future__ import annotations

import errno
import os
import signal
import sys

from writroot.errors import BadInput

ARM_VALUE = "yes-i-am-testing-writroot"
POINTS: tuple[str, ...] = (
    "after-keygen",      # a key was generated and stored on the token, nothing published
    "before-publish",    # every output is staged, the spent-plan record says pending
    "after-publish",     # the outputs were renamed into place, not yet marked published
    "after-restore",     # a recovered key was sealed and stored on the token, nothing published
)
#: "transcript-<event>" fires just before the run's transcript records <event>.
TRANSCRIPT_EVENTS = ("start", "quorum", "token", "generate", "sign", "retire", "outputs",
                     "close")
POINTS += tuple(f"transcript-{event}" for event in TRANSCRIPT_EVENTS)
ACTIONS = ("kill", "enospc", "interrupt", "fault")


def _configured() -> tuple[str, str] | None:
    value = os.environ.get("WRITROOT_FAILPOINT")
    if not value:
        return None
    point, _, action = value.partition(":")
    if point not in POINTS or action not in ACTIONS:
        raise BadInput(f"unknown failpoint {value!r} (points: {', '.join(POINTS)}; actions: "
                       f"{', '.join(ACTIONS)})", "WRITROOT_FAILPOINT")
    if os.environ.get("WRITROOT_FAILPOINT_ARMED") != ARM_VALUE:
        raise BadInput("a failpoint is named but not armed; failpoints are for tests only "
                       "(unset WRITROOT_FAILPOINT)", "WRITROOT_FAILPOINT")
    return point, action


def check() -> None:
    """Refuse a misconfigured failpoint before any work (call at the start of a command)."""
    _configured()


def hit(point: str) -> None:
    """Fire `point` if the environment arms it; otherwise do nothing."""
    if point not in POINTS:
        return
    configured = _configured()
    if configured is None or configured[0] != point:
        return
    action = configured[1]
    sys.stderr.write(f"writroot: failpoint {point}:{action} fired\n")
    sys.stderr.flush()
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f"failpoint {point}")
    if action == "interrupt":
        raise KeyboardInterrupt
    raise RuntimeError(f"injected fault at failpoint {point}")
