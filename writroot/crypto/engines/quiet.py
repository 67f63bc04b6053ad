"""Import a module that talks on stdout without letting it reach our stdout.

liboqs-python prints "liboqs-python faulthandler is disabled" when imported, through a logging
handler that holds the real `sys.stdout` object, so `contextlib.redirect_stdout` alone does
not catch it. During the import file descriptor 1 is pointed at stderr (what the library
writes goes there, never into `--json` output), `sys.stdout` is swapped too, and afterwards
every logging handler the module attached to stdout is pointed at stderr.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from types import ModuleType


def _retarget_handlers(prefix: str) -> None:
    names = [n for n in logging.root.manager.loggerDict if n == prefix
             or n.startswith(prefix + ".")]
    for name in names:
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and \
                    handler.stream in (sys.stdout, sys.__stdout__):
                handler.setStream(sys.stderr)


def quiet_import(name: str) -> ModuleType:
    """`importlib.import_module(name)`, with nothing it writes landing on stdout."""
    if name in sys.modules:
        return sys.modules[name]
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:
        saved = -1
    try:
        if saved >= 0:
            os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            module = importlib.import_module(name)
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
    finally:
        if saved >= 0:
            os.dup2(saved, 1)
            os.close(saved)
    _retarget_handlers(name.split(".")[0])
    return module
