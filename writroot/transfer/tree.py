"""Directories in and out: a no-follow walk with caps, and all-or-nothing staged writes.

The walk holds a file descriptor for each directory and opens names relative to it without
following links, so a path swapped for a symlink mid-walk is refused rather than followed.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from writroot.errors import BadInput
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


def read_capped(fd: int, cap: int) -> bytes | None:
    """All of fd's bytes, or None if there are more than `cap` (the stat size is not trusted)."""
    chunks: list[bytes] = []
    got = 0
    while got <= cap:
        chunk = os.read(fd, min(1024 * 1024, cap + 1 - got))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        got += len(chunk)
    return None


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


def _chmod(target: int | Path, mode: int) -> None:
    # FAT and exFAT transfer media refuse chmod; the mode is advisory there, the content is not.
    try:
        os.chmod(target, mode)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP):
            raise


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_fd(fd: int, data: bytes) -> None:
    """Write all of `data` to a fresh file (mode 0644), fsync and close it."""
    try:
        _chmod(fd, 0o644)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes) -> None:
    _write_fd(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                      0o644), data)


def _staging_name(out: Path) -> str:
    return f".{out.name}.writroot-staging-"


def write_tree(out: Path, files: Mapping[str, bytes]) -> None:
    """Create directory `out` holding `files` (modes 0644/0755): staged beside it, one rename."""
    check_new(out, "destination")
    stage = Path(tempfile.mkdtemp(prefix=_staging_name(out), dir=out.parent))
    try:
        dirs = {stage}
        for rel, data in files.items():
            rules.check_path(rel, f"{out}: {rules.show(rel)}")
            target = stage / rel
            for parent in reversed(target.relative_to(stage).parents[:-1]):
                if stage / parent not in dirs:
                    os.mkdir(stage / parent, 0o755)
                    dirs.add(stage / parent)
            _write_new(target, data)
        for path in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            _chmod(path, 0o755)
            _fsync_dir(path)
        # rename() would replace an empty directory: look again right before it.
        if os.path.lexists(out):
            raise BadInput("destination appeared while staging", str(out))
        os.rename(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _fsync_dir(out.parent)


def write_file(out: Path, data: bytes) -> None:
    """Create file `out` (mode 0644): staged beside it, then linked into place without replacing."""
    check_new(out, "output")
    fd, tmp_name = tempfile.mkstemp(prefix=_staging_name(out), dir=out.parent)
    tmp = Path(tmp_name)
    try:
        _write_fd(fd, data)
        try:
            os.link(tmp, out)  # fails rather than replace a file that appeared meanwhile
        except FileExistsError:
            raise BadInput("output appeared while staging", str(out)) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            # FAT-family media have no hard links: fall back to checking, then renaming.
            if os.path.lexists(out):
                raise BadInput("output appeared while staging", str(out)) from None
            os.rename(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(out.parent)
