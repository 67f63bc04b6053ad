"""Directories in and out: a no-follow walk with caps, and all-or-nothing staged writes.

The walk holds a file descriptor for each directory and opens names relative to it without
following links, so a path swapped for a symlink mid-walk is refused rather than followed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from writroot.errors import BadInput
from writroot.jsonio import read_fd_capped as read_capped
from writroot.outputs import Publication, publish_file
from writroot.transfer import rules

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a regular file swapped for a FIFO after the stat must not hang the open.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_KINDS = ((stat.S_ISLNK, "symbolic link"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
          (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"))


def kind_of(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "special file")


class _Walk:
    def __init__(self, root: Path, max_files: int, max_total: int) -> None:
        self.root = root
        self.max_files = max_files
        self.max_total = max_total
        self.files: dict[str, bytes] = {}
        self.entries = 0
        self.total = 0

    def at(self, rel: str) -> str:
        return f"{self.root}: {rules.show(rel)}"

    def directory(self, fd: int, prefix: str) -> None:
        names = sorted(os.listdir(fd))
        if not names and prefix:
            raise BadInput("empty directory (bundles carry files, not directories)",
                           self.at(prefix.rstrip("/")))
        for name in names:
            rel = prefix + name
            self.entries += 1
            if self.entries > rules.MAX_ENTRIES:
                raise BadInput(f"more than {rules.MAX_ENTRIES} entries", str(self.root))
            rules.check_path(rel, self.at(rel))
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                try:
                    self.directory(sub, rel + "/")
                finally:
                    os.close(sub)
            elif stat.S_ISREG(st.st_mode):
                self.file(fd, name, rel, st)
            else:
                raise BadInput(f"is a {kind_of(st.st_mode)}; bundles carry regular files only",
                               self.at(rel))

    def file(self, dir_fd: int, name: str, rel: str, st: os.stat_result) -> None:
        if len(self.files) >= self.max_files:
            raise BadInput(f"more than {self.max_files} files", str(self.root))
        if st.st_nlink > 1:
            raise BadInput("has other hard links; bundles carry plain files only", self.at(rel))
        if st.st_size > rules.MAX_FILE_BYTES:
            raise BadInput(f"file is {st.st_size} bytes, larger than the "
                           f"{rules.MAX_FILE_BYTES}-byte cap", self.at(rel))
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        try:
            now = os.fstat(fd)
            if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                raise BadInput("changed while being read", self.at(rel))
            data = read_capped(fd, rules.MAX_FILE_BYTES)
        finally:
            os.close(fd)
        if data is None:
            raise BadInput(f"file grew past the {rules.MAX_FILE_BYTES}-byte cap", self.at(rel))
        self.total += len(data)
        if self.total > self.max_total:
            raise BadInput(f"files total more than the {self.max_total}-byte cap", str(self.root))
        self.files[rel] = data


def read_tree(root: Path, max_files: int, max_total: int) -> dict[str, bytes]:
    """Every regular file under `root` by relative POSIX path; anything else is refused."""
    try:
        fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
    except OSError as exc:
        raise BadInput(f"cannot open directory: {exc.strerror}", str(root)) from None
    walk = _Walk(root, max_files, max_total)
    try:
        walk.directory(fd, "")
    except OSError as exc:
        name = exc.filename if isinstance(exc.filename, str) else None  # not a descriptor
        raise BadInput(f"cannot read: {exc.strerror}",
                       f"{root}: {rules.show(name)}" if name else str(root)) from None
    finally:
        os.close(fd)
    return walk.files


def check_new(out: Path, what: str) -> None:
    """`out` must not exist and its parent must be a directory; nothing is created here."""
    if out.name in ("", ".", ".."):
        raise BadInput(f"not a usable {what} name", str(out))
    if os.path.lexists(out):
        raise BadInput(f"{what} exists already (bundles are written once, never over anything)",
                       str(out))
    if not out.parent.is_dir():
        raise BadInput(f"the parent directory of the {what} does not exist", str(out))


_HINT = "bundles are written once, never over anything"


def write_tree(out: Path, files: Mapping[str, bytes], *, private: bool = False) -> None:
    """Create directory `out` holding `files` (modes 0644/0755, or 0600/0700 when `private`:
    what an import brings across the gap is readable by its owner only): the one staged
    publish."""
    check_new(out, "destination")
    need = sum(len(d) + 4096 for d in files.values()) + 64 * 1024
    file_mode, dir_mode = (0o600, 0o700) if private else (0o644, 0o755)
    with Publication(out, "destination", need=need, exists_hint=_HINT,
                     dir_mode=dir_mode) as pub:
        for rel, data in files.items():
            rules.check_path(rel, f"{out}: {rules.show(rel)}")
            pub.write(rel, data, file_mode)


def write_file(out: Path, data: bytes) -> None:
    """Create file `out` (mode 0644): staged beside it, then linked into place without replacing."""
    check_new(out, "output")
    publish_file(out, data, "output", exists_hint=_HINT)
