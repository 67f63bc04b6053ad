"""Write-once, all-or-nothing outputs: stage in a hidden directory, publish when all succeeded."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from types import TracebackType

from writroot.errors import BadInput


def _safe_relative(name: str) -> PurePosixPath:
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts or "" in rel.parts:
        raise BadInput(f"unsafe output path {name!r}")
    return rel


def write_once(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Create `path` (it must not exist), write and fsync it; never overwrite."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


class Staging:
    """Files written here appear under `root` only when the block exits without error.

    Each file is fsynced and then renamed into place; an existing file is never replaced.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[PurePosixPath] = []
        self.dir: Path | None = None

    def __enter__(self) -> Staging:
        self.root.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix=".writroot-staging-", dir=self.root))
        return self

    def write(self, name: str, data: bytes) -> None:
        assert self.dir is not None
        rel = _safe_relative(name)
        if (self.root / rel).exists() or rel in self.files:
            raise BadInput("output exists already (outputs are write-once)", str(self.root / rel))
        write_once(self.dir / rel, data)
        self.files.append(rel)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self.dir is not None
        try:
            if exc_type is None:
                self._publish()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _publish(self) -> None:
        assert self.dir is not None
        for rel in self.files:
            if (self.root / rel).exists():
                raise BadInput("output appeared while staging (outputs are write-once)",
                               str(self.root / rel))
        for rel in self.files:
            dest = self.root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(self.dir / rel, dest)  # link() fails rather than replace an existing file
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
