"""Strict JSON in, RFC 8785 canonical JSON out, strict base64 and UTC times.

Hostile input is refused early: size caps, duplicate keys, NaN/Infinity, non-object roots.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from writroot.errors import BadInput

MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_B64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")


def _no_duplicates(where: str) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise BadInput(f"duplicate key {key!r}", where)
            out[key] = value
        return out

    return hook


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def loads_strict(data: bytes | str, where: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """Parse JSON refusing oversized input, duplicate keys and non-finite numbers."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise BadInput(f"document is {len(raw)} bytes, larger than the {max_bytes}-byte cap", where)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"not UTF-8 ({exc.reason} at byte {exc.start})", where) from None
    try:
        return json.loads(
            text, object_pairs_hook=_no_duplicates(where), parse_constant=_no_constants
        )
    except json.JSONDecodeError as exc:
        raise BadInput(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                       where) from None
    except (ValueError, RecursionError) as exc:
        raise BadInput(f"malformed JSON: {exc}", where) from None


def read_capped(path: Path, cap: int) -> bytes:
    """A file's bytes, refusing one larger than `cap`; the error names the file."""
    try:
        size = path.stat().st_size
        if size > cap:
            raise BadInput(f"file is {size} bytes, larger than the {cap}-byte cap", str(path))
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read: {exc.strerror}", str(path)) from None


def read_json_file(path: Path, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """Read and strictly parse a JSON file; the error names the file."""
    return loads_strict(read_capped(path, max_bytes), str(path), max_bytes)


def canonical(obj: Any) -> bytes:
    """RFC 8785 (JCS) canonical JSON bytes."""
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
    if len(text) % 4 or not _B64_RE.fullmatch(text):
        raise BadInput("invalid base64", where)
    if len(text) // 4 * 3 > max_bytes:
        raise BadInput("base64 value too large", where)
    try:
        out = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise BadInput("invalid base64", where) from None
    if base64.b64encode(out).decode("ascii") != text:
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
        raise BadInput(f"not a valid time: {text!r}", where) from None


def is_hex_digest(text: object) -> bool:
    return isinstance(text, str) and bool(_HEX64_RE.fullmatch(text))
