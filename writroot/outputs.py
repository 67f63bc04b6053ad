"""The one staged, all-or-nothing publish used by every writer.

An output (a directory, or a single file) is written into a staging directory *beside* its
destination (same file system), every file and directory is fsynced, the destination is
looked at again just before the step that publishes it, and then one `rename` (a directory) or
one `link` (a file: link never replaces) makes it appear. A failure or a kill at any moment
leaves the destination absent or complete, never partial.

`check_destination` runs before any expensive or irreversible work (an HSM signature): it
refuses a destination that exists in any form (a dangling symlink included), a parent that is
not a directory, read-only or unwritable media and too little free space.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from types import TracebackType

from writroot.errors import BadInput, OutputFailed

#: Free space every publish asks for (SLH-DSA-SHA2-256s envelopes with proofs are ~100 KB).
MIN_FREE_BYTES = 4 * 1024 * 1024
STAGING_MARK = ".writroot-staging-"


def safe_relative(name: str) -> PurePosixPath:
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts or "" in rel.parts:
        raise BadInput(f"unsafe output path {name!r}")
    return rel


def _existing_ancestor(path: Path) -> Path:
    here = path
    while not os.path.lexists(here):
        if here.parent == here:
            break
        here = here.parent
    return here


def check_destination(dest: Path, what: str = "output", need: int = MIN_FREE_BYTES,
                      exists_hint: str = "outputs are write-once") -> None:
    """Refuse, before any work, a destination that cannot be published to.

    The parent may be missing (it is created when staging starts) if its nearest existing
    ancestor is a writable directory.
    """
    if dest.name in ("", ".", ".."):
        raise BadInput(f"not a usable {what} name", str(dest))
    if os.path.islink(dest) and not os.path.exists(dest):
        raise BadInput(f"{what} is a dangling symbolic link; refusing to write through it",
                       str(dest))
    if os.path.lexists(dest):
        raise BadInput(f"{what} exists already ({exists_hint})", str(dest))
    parent = _existing_ancestor(dest.parent)
    if not parent.is_dir():
        raise BadInput(f"cannot create the {what}: {parent} is not a directory", str(dest))
    try:
        fs = os.statvfs(parent)
    except OSError as exc:
        raise OutputFailed(f"cannot check the {what}'s directory: {exc.strerror}",
                           str(dest)) from None
    if fs.f_flag & os.ST_RDONLY:
        raise OutputFailed(f"{parent} is on a read-only file system; nothing was written",
                           str(dest))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputFailed(f"{parent} is not writable; nothing was written", str(dest))
    free = fs.f_bavail * fs.f_frsize
    if free < need:
        raise OutputFailed(f"only {free} bytes free on the file system of {parent}; at least "
                           f"{need} are needed; nothing was written", str(dest))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chmod(target: int | Path, mode: int) -> None:
    # FAT and exFAT transfer media refuse chmod; the mode is advisory there, the content is not.
    try:
        os.chmod(target, mode)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP):
            raise


def _write_new(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Create `path` (it must not exist; never through a symlink), write all, fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        _chmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def write_once(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Create `path` (it must not exist), write and fsync it; never overwrite.

    For files inside a staging directory; published outputs go through `Publication`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_new(path, data, mode)


def _walk(root: Path) -> Iterator[tuple[Path, bool]]:
    """Every path under root, deepest first; (path, is_dir)."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        base = Path(dirpath)
        for f in filenames:
            yield base / f, False
        for d in dirnames:
            yield base / d, True
    yield root, True


class Publication:
    """A new directory (or, with `single_file`, a new file) published all at once.

    Use as a context manager; write with `write` (or into `stage` directly); `commit()`
    publishes (called on a clean exit if not called before). On error nothing appears.
    """

    def __init__(self, dest: Path, what: str = "output", *, single_file: bool = False,
                 need: int = MIN_FREE_BYTES, exists_hint: str = "outputs are write-once",
                 dir_mode: int | None = None) -> None:
        self.dest = dest
        self.what = what
        self.single_file = single_file
        self.need = need
        self.exists_hint = exists_hint
        self.dir_mode = dir_mode
        self.stage = Path()
        self.committed = False
        self.keep_stage = False
        self.files: list[PurePosixPath] = []

    def __enter__(self) -> Publication:
        check_destination(self.dest, self.what, self.need, self.exists_hint)
        try:
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            self.stage = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}{STAGING_MARK}",
                                               dir=self.dest.parent))
        except OSError as exc:
            raise self._failed(exc) from None
        return self

    def _failed(self, exc: OSError) -> OutputFailed:
        return OutputFailed(f"cannot write: {exc.strerror or exc}; nothing was written",
                            str(self.dest))

    def write(self, name: str, data: bytes, mode: int = 0o644) -> Path:
        rel = PurePosixPath(self.dest.name) if self.single_file else safe_relative(name)
        if rel in self.files:
            raise BadInput("output written twice (outputs are write-once)", str(self.dest / rel))
        target = self.stage / rel
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_new(target, data, mode)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise BadInput("output written twice (outputs are write-once)",
                               str(self.dest / rel)) from None
            raise self._failed(exc) from None
        self.files.append(rel)
        return target

    def commit(self) -> None:
        """fsync everything staged, look at the destination again, publish by one step."""
        if self.committed:
            return
        try:
            for path, is_dir in _walk(self.stage):
                if is_dir:
                    if self.dir_mode is not None:
                        _chmod(path, self.dir_mode)
                    _fsync_dir(path)
                else:
                    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            # rename() would replace an empty directory: look again right before it.
            if os.path.lexists(self.dest):
                raise BadInput(f"{self.what} appeared while staging ({self.exists_hint})",
                               str(self.dest))
            if self.single_file:
                self._link_file()
            else:
                os.rename(self.stage, self.dest)
            self.committed = True
            _fsync_dir(self.dest.parent)
        except OSError as exc:
            if self.committed:
                raise OutputFailed(f"published, but the directory could not be synced: "
                                   f"{exc.strerror}", str(self.dest)) from None
            raise self._failed(exc) from None

    def _link_file(self) -> None:
        staged = self.stage / self.dest.name
        if not staged.exists():
            raise BadInput(f"nothing was staged for the {self.what}", str(self.dest))
        try:
            os.link(staged, self.dest)  # fails rather than replace a file that appeared
        except FileExistsError:
            raise BadInput(f"{self.what} appeared while staging ({self.exists_hint})",
                           str(self.dest)) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            # FAT-family media have no hard links: check again, then rename.
            if os.path.lexists(self.dest):
                raise BadInput(f"{self.what} appeared while staging ({self.exists_hint})",
                               str(self.dest)) from None
            os.rename(staged, self.dest)

    def discard(self) -> None:
        if self.keep_stage or not self.stage.parts:
            return
        if self.single_file or not self.committed:
            shutil.rmtree(self.stage, ignore_errors=True)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc_type is None:
                self.commit()
        finally:
            self.discard()


def publish_file(dest: Path, data: bytes, what: str = "output", mode: int = 0o644,
                 exists_hint: str = "outputs are write-once") -> None:
    """Create the single file `dest` through a `Publication`."""
    with Publication(dest, what, single_file=True, need=len(data) + 64 * 1024,
                     exists_hint=exists_hint) as pub:
        pub.write(dest.name, data, mode)


class Staging:
    """Files written here appear under directory `root` together, or not at all.

    A new `root` is one `Publication` (one rename). Into an existing directory, a single file is
    linked into place (atomic, never replacing); several files are linked one after another
    and, if any fails, the ones already linked are removed again.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[PurePosixPath] = []
        self._pub: Publication | None = None
        self.dir: Path | None = None

    def __enter__(self) -> Staging:
        if not os.path.lexists(self.root):
            self._pub = Publication(self.root, "output directory").__enter__()
            self.dir = self._pub.stage
            return self
        if not self.root.is_dir():
            raise BadInput("not a directory", str(self.root))
        check_destination(self.root / f".{STAGING_MARK}probe", "output")
        try:
            self.dir = Path(tempfile.mkdtemp(prefix=STAGING_MARK, dir=self.root))
        except OSError as exc:
            raise OutputFailed(f"cannot write: {exc.strerror}; nothing was written",
                               str(self.root)) from None
        return self

    def write(self, name: str, data: bytes, mode: int = 0o644) -> None:
        """Stage `name`; `mode` is set exactly (umask aside): 0o600 for a secret or a share."""
        assert self.dir is not None
        rel = safe_relative(name)
        if self._pub is not None:
            self._pub.write(name, data, mode)
            self.files.append(rel)
            return
        if os.path.lexists(self.root / rel) or rel in self.files:
            raise BadInput("output exists already (outputs are write-once)", str(self.root / rel))
        try:
            write_once(self.dir / rel, data, mode)
        except OSError as exc:
            raise OutputFailed(f"cannot write: {exc.strerror}; nothing was written",
                               str(self.root / rel)) from None
        self.files.append(rel)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._pub is not None:
            if exc_type is None and os.path.isdir(self.root) and not os.path.islink(self.root):
                # someone made the directory meanwhile (the caller's own key files): link in
                try:
                    self._publish()
                finally:
                    self._pub.discard()
                return
            self._pub.__exit__(exc_type, exc, tb)
            return
        assert self.dir is not None
        try:
            if exc_type is None:
                self._publish()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _publish(self) -> None:
        assert self.dir is not None
        for rel in self.files:
            if os.path.lexists(self.root / rel):
                raise BadInput("output appeared while staging (outputs are write-once)",
                               str(self.root / rel))
        linked: list[Path] = []
        made: list[Path] = []
        try:
            for rel in self.files:
                dest = self.root / rel
                for parent in reversed(rel.parents[:-1]):
                    if not (self.root / parent).exists():
                        os.mkdir(self.root / parent)
                        made.append(self.root / parent)
                os.link(self.dir / rel, dest)  # link() fails rather than replace a file
                linked.append(dest)
            _fsync_dir(self.root)
        except OSError as exc:
            for path in linked:
                path.unlink(missing_ok=True)
            for path in reversed(made):
                shutil.rmtree(path, ignore_errors=True)
            if isinstance(exc, FileExistsError):
                raise BadInput("output appeared while staging (outputs are write-once)",
                               str(exc.filename)) from None
            raise OutputFailed(f"cannot write: {exc.strerror}; nothing was written",
                               str(self.root)) from None


def replace_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace the regular file `path` (a state file) atomically: a new file beside it,
    fsynced, then one rename; a kill leaves the old or the new content, never a mix."""
    if os.path.islink(path) or (os.path.lexists(path) and not path.is_file()):
        raise BadInput("not a regular file; refusing to replace it", str(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{STAGING_MARK}", dir=path.parent)
    except OSError as exc:
        raise OutputFailed(f"cannot write: {exc.strerror}; nothing was written",
                           str(path)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            _chmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputFailed(f"cannot write: {exc.strerror}; nothing was written",
                           str(path)) from None
