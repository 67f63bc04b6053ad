"""Tar bundles: a deterministic writer and a reader that never extracts.

The reader works on the archive's bytes in memory (capped before reading), takes members one
at a time with caps checked before any content is read, and insists on a clean end-of-archive:
tarfile itself stops quietly at a damaged header, which would hide truncation or smuggled data.
"""

from __future__ import annotations

import io
import tarfile

from writroot.errors import BadInput
from writroot.transfer import rules

_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE)
_TYPE_NAMES = {tarfile.SYMTYPE: "symbolic link", tarfile.LNKTYPE: "hard link",
               tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
               tarfile.FIFOTYPE: "FIFO", tarfile.CONTTYPE: "contiguous file",
               tarfile.GNUTYPE_SPARSE: "sparse file"}
# Damaged archives surface from tarfile as any of these.
_TAR_ERRORS = (tarfile.TarError, ValueError, EOFError, OverflowError)


def pack(entries: list[tuple[str, bytes]]) -> bytes:
    """A POSIX (pax) tar of regular files, in the order given, with no varying metadata.

    mtime 0, uid/gid 0, empty owner names, mode 0644; pax records appear only where ustar
    cannot hold a value (paths over 100 characters).
    """
    buf = io.BytesIO()
    with tarfile.TarFile(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT,
                         encoding="utf-8") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _kind(member: tarfile.TarInfo) -> str | None:
    """None for an acceptable member, else what it is."""
    if member.type in _REGULAR:
        return "sparse file" if member.issparse() else None
    if member.type == tarfile.DIRTYPE:
        return None
    return _TYPE_NAMES.get(member.type, f"member of tar type {member.type!r}")


def unpack(data: bytes, where: str, max_files: int, max_total: int) -> dict[str, bytes]:
    """Every regular file in the archive by name; links, devices and surprises are refused."""
    files: dict[str, bytes] = {}
    dirs: dict[str, str] = {}
    names: dict[str, str] = {}
    total = 0
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
    except _TAR_ERRORS as exc:
        raise BadInput(f"not a readable tar archive ({exc})", where) from None
    with tar:
        for count in range(1, rules.MAX_ENTRIES + 2):
            try:
                member = tar.next()
            except _TAR_ERRORS as exc:
                raise BadInput(f"malformed or truncated tar ({exc})", where) from None
            if member is None:
                break
            if count > rules.MAX_ENTRIES:
                raise BadInput(f"more than {rules.MAX_ENTRIES} tar members", where)
            at = f"{where}: {rules.show(member.name)}"
            rules.check_path(member.name, at)
            kind = _kind(member)
            if kind is not None:
                raise BadInput(f"is a {kind}; bundles carry regular files only", at)
            folded = member.name.casefold()
            if folded in names:
                same = "" if names[folded] == member.name else \
                    f" ({names[folded]!r} differs only in case)"
                raise BadInput(f"duplicate tar member{same}", at)
            names[folded] = member.name
            if member.isdir():
                dirs[member.name] = at
                continue
            if len(files) >= max_files:
                raise BadInput(f"more than {max_files} files", where)
            # The header's size is a claim: check it against the caps before reading anything.
            if not 0 <= member.size <= rules.MAX_FILE_BYTES:
                raise BadInput(f"member claims {member.size} bytes; the cap is "
                               f"{rules.MAX_FILE_BYTES}", at)
            total += member.size
            if total > max_total:
                raise BadInput(f"members total more than the {max_total}-byte cap", where)
            files[member.name] = _content(tar, member, at)
        end = tar.offset
    tail = data[end:]
    if len(tail) < 2 * tarfile.BLOCKSIZE or tail.count(0) != len(tail):
        raise BadInput("truncated or malformed tar: the members do not end in a clean "
                       "end-of-archive marker", where)
    for name, at in dirs.items():
        if not any(path.startswith(name + "/") for path in files):
            raise BadInput("directory member holds no file", at)
    return files


def _content(tar: tarfile.TarFile, member: tarfile.TarInfo, at: str) -> bytes:
    try:
        handle = tar.extractfile(member)
        content = handle.read(member.size) if handle is not None else b""
    except _TAR_ERRORS as exc:
        raise BadInput(f"truncated member ({exc})", at) from None
    if len(content) != member.size:
        raise BadInput(f"truncated member: the header says {member.size} bytes, the archive "
                       f"holds {len(content)}", at)
    return content
