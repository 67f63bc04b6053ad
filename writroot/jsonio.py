"""Strict JSON in, RFC 8785 canonical JSON out, strict base64 and UTC times.

Hostile input is refused early: size caps, duplicate keys, NaN/Infinity, non-object roots.
"""

from __future__ import annotations

import base64
import binascii
import errno
import json
import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from writroot.errors import BadInput, excerpt, short

MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
#: Nesting any writroot document (an OSCAL catalog is the deepest) stays far below; checked
#: before parsing, so no reader or rule recurses deeper.
MAX_JSON_DEPTH = 100
#: Integers in writroot documents fit in 2**53; digit runs far past that are refused unread
#: (schemas then name the field of an integer merely too large).
MAX_INT_DIGITS = 1000
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_B64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")


def _no_duplicates(where: str) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise BadInput(f"duplicate key {excerpt(key)}", where)
            out[key] = value
        return out

    return hook


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


_JSON_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET_RE = re.compile(r"[\[\]{}]")


def _too_deep(text: str, limit: int) -> bool:
    """True when arrays and objects nest deeper than `limit` (strings skipped)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _BRACKET_RE.finditer(_JSON_STRING_RE.sub("", text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > limit:
            return True
    return False


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} characters; at most {MAX_INT_DIGITS}")
    return int(text)


def loads_strict(data: bytes | str, where: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """Parse JSON refusing oversized or overdeep input, duplicate keys, overlong integers and
    non-finite numbers."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise BadInput(f"document is {len(raw)} bytes, larger than the {max_bytes}-byte cap", where)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"not UTF-8 ({exc.reason} at byte {exc.start})", where) from None
    if _too_deep(text, MAX_JSON_DEPTH):
        raise BadInput(f"nested deeper than {MAX_JSON_DEPTH} levels", where)
    try:
        value = json.loads(
            text, object_pairs_hook=_no_duplicates(where), parse_constant=_no_constants,
            parse_int=_bounded_int,
        )
    except json.JSONDecodeError as exc:
        raise BadInput(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                       where) from None
    except (ValueError, RecursionError) as exc:
        raise BadInput(f"malformed JSON: {short(str(exc))}", where) from None
    if _SURROGATE_RE.search(text) and _lone_surrogate(value):
        raise BadInput("a string with a lone surrogate (\\ud800-\\udfff escape): not "
                       "I-JSON (RFC 7493)", where)
    return value


_SURROGATE_RE = re.compile(r"\\u[dD][89a-fA-F]")


def _lone_surrogate(value: Any) -> bool:
    """True when a string (or key) holds a surrogate no UTF-8 can carry: canonical JSON
    could not be written for it."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def read_fd_capped(fd: int, cap: int) -> bytes | None:
    """All of fd's bytes, or None if there are more than `cap` (reads at most cap + 1)."""
    chunks: list[bytes] = []
    got = 0
    while got <= cap:
        chunk = os.read(fd, min(1024 * 1024, cap + 1 - got))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        got += len(chunk)
    return None


def file_kind(mode: int) -> str:
    kinds = ((stat.S_ISLNK, "symbolic link"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
             (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
             (stat.S_ISDIR, "directory"))
    return next((name for test, name in kinds if test(mode)), "special file")


def read_capped(path: Path, cap: int) -> bytes:
    """A regular file's bytes, at most `cap` of them; the error names the file.

    The one capped read: opened without following a final symlink and without blocking, then
    fstat'd on the descriptor, so a FIFO, a device (/dev/zero) or a file swapped in after a
    stat is refused rather than read without end; never more than cap + 1 bytes are read.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadInput("is a symbolic link; give the file itself", str(path)) from None
        raise BadInput(f"cannot read: {exc.strerror}", str(path)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadInput(f"is a {file_kind(info.st_mode)}, not a regular file", str(path))
        if info.st_size > cap:
            raise BadInput(f"file is {info.st_size} bytes, larger than the {cap}-byte cap",
                           str(path))
        data = read_fd_capped(fd, cap)
    except OSError as exc:
        raise BadInput(f"cannot read: {exc.strerror}", str(path)) from None
    finally:
        os.close(fd)
    if data is None:
        raise BadInput(f"file grew past the {cap}-byte cap", str(path))
    return data


def read_json_file(path: Path, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """Read and strictly parse a JSON file; the error names the file."""
    return loads_strict(read_capped(path, max_bytes), str(path), max_bytes)


#: The largest integer RFC 8785 serialises exactly (an IEEE 754 double's).
_MAX_EXACT_INT = 2**53 - 1


def _plain(obj: Any) -> bool:
    """Only the values whose RFC 8785 form C json writes identically (when every string is
    printable ASCII): objects with string keys, arrays, strings, booleans, null and
    integers in the exact range. Floats, big integers and anything else take the slow path."""
    stack = [obj]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is dict:
            if not all(type(k) is str for k in value):
                return False
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
        elif kind is int:
            if not -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
                return False
        elif kind is not str and kind is not bool and value is not None:
            return False
    return True


def canonical(obj: Any) -> bytes:
    """RFC 8785 (JCS) canonical JSON bytes.

    Fast path: for plain values whose strings are all ASCII without escapes other than
    JSON's short ones, C json's sorted, compact output is byte-for-byte RFC 8785 (ASCII keys
    sort the same by code point and by UTF-16 unit); anything else goes through rfc8785."""
    import json

    if _plain(obj):
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        if "\\u" not in text:
            return text.encode("ascii")
    import rfc8785

    try:
        return bytes(rfc8785.dumps(obj))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise BadInput(f"cannot canonicalise: {exc}") from None


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: object, where: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> bytes:
    """Standard base64 with padding; anything else (URL-safe, whitespace, junk) is refused."""
    if not isinstance(text, str):
        raise BadInput("expected a base64 string", where)
    if len(text) % 4:
        raise BadInput("invalid base64", where)
    if len(text) // 4 * 3 > max_bytes:
        raise BadInput("base64 value too large", where)
    try:  # lenient decode, then exact re-encode: equal only for canonical base64
        out = binascii.a2b_base64(text)
        ok = binascii.b2a_base64(out, newline=False) == text.encode("ascii")
    except (binascii.Error, ValueError):  # ValueError: not ASCII
        ok = False
    if not ok:  # the slow checks only name what is wrong
        if not _B64_RE.fullmatch(text):
            raise BadInput("invalid base64", where)
        try:
            base64.b64decode(text, validate=True)
        except binascii.Error:
            raise BadInput("invalid base64", where) from None
        raise BadInput("non-canonical base64", where)
    return out


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: object, where: str) -> datetime:
    """UTC `YYYY-MM-DDTHH:MM:SSZ` only: no offsets, fractions or naive times."""
    if not isinstance(text, str) or not _TIME_RE.fullmatch(text):
        raise BadInput("expected a UTC time as YYYY-MM-DDTHH:MM:SSZ", where)
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise BadInput(f"not a valid time: {excerpt(text)}", where) from None


def is_hex_digest(text: object) -> bool:
    return isinstance(text, str) and bool(_HEX64_RE.fullmatch(text))
