"""What a bundle may hold: the path rule and the size caps, shared by writer and reader.

The caps are read as `rules.NAME` at call time (never imported by value) so one place sets them.
"""

from __future__ import annotations

import re

from writroot.errors import BadInput

MANIFEST_NAME = "MANIFEST.json"
FORMAT_VERSION = 1

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_TOTAL_BYTES = 64 * 1024 * 1024
MAX_FILES = 1000
MAX_MANIFEST_BYTES = 1024 * 1024
#: Tar members or directory entries: every file, a directory entry for each, and the manifest.
MAX_ENTRIES = 2 * MAX_FILES + 1
#: Headers (pax records, long names) and 512-byte padding on top of the content caps.
TAR_OVERHEAD_BYTES = 8 * 1024 * 1024
MAX_PATH_CHARS = 255

# The POSIX portable filename character set: no spaces, quotes, shell or markup characters,
# no Unicode look-alikes or normalisation surprises, the same bytes on every file system.
_PART_RE = re.compile(r"[A-Za-z0-9._-]+")
_KIND_RE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
MAX_KIND_CHARS = 64


def max_tar_bytes() -> int:
    return MAX_TOTAL_BYTES + MAX_MANIFEST_BYTES + TAR_OVERHEAD_BYTES


def show(name: str) -> str:
    """A name as it may be printed: hostile names (control characters, non-ASCII) are quoted."""
    return name if name.isascii() and name.isprintable() else repr(name)


def check_path(path: object, where: str) -> str:
    """A relative POSIX path that means the same thing everywhere, or BadInput naming the rule."""
    if not isinstance(path, str):
        raise BadInput("expected a path string", where)
    if not path:
        raise BadInput("empty path", where)
    if len(path) > MAX_PATH_CHARS:
        raise BadInput(f"path is {len(path)} characters, longer than {MAX_PATH_CHARS}", where)
    if path.startswith("/"):
        raise BadInput("absolute path", where)
    for ch in path:
        if ch == "\\":
            raise BadInput("backslash in path", where)
        if ch == "\x00":
            raise BadInput("NUL character in path", where)
        if not ch.isascii() or not ch.isprintable():
            raise BadInput(f"character {ch!r} in path (control or non-ASCII)", where)
    parts = path.split("/")
    if ".." in parts:
        raise BadInput("'..' component in path", where)
    for part in parts:
        if part == "":
            raise BadInput("empty component in path ('//' or a trailing '/')", where)
        if part == ".":
            raise BadInput("'.' component in path", where)
        if not _PART_RE.fullmatch(part):
            bad = next(ch for ch in part if not _PART_RE.fullmatch(ch))
            raise BadInput(f"character {bad!r} in path: only A-Z a-z 0-9 . _ - are allowed",
                           where)
    return path


def check_kind(kind: object, where: str) -> str:
    if not isinstance(kind, str) or len(kind) > MAX_KIND_CHARS or not _KIND_RE.fullmatch(kind):
        raise BadInput(f"kind must be a lowercase identifier like 'key-request' (letters, digits, "
                       f"single hyphens, at most {MAX_KIND_CHARS} characters), not {kind!r}",
                       where)
    return kind
