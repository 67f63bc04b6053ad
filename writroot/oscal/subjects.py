"""in-toto subjects and the name checks shared by statements and SLSA predicates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from writroot.errors import BadInput

_TYPE_URI_RE = re.compile(r"[a-z][a-z0-9+.-]*:[^\s]+")


@dataclass(frozen=True)
class Subject:
    """An in-toto ResourceDescriptor as writroot uses it: a name and a SHA-256."""

    name: str
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "digest": {"sha256": self.sha256}}



def check_name(value: Any, where: str) -> str:
    if (not isinstance(value, str) or not value or len(value) > 512
            or any(ord(c) < 0x20 or c == "\x7f" for c in value)):
        raise BadInput("expected a subject name of 1-512 printable characters", where)
    return value


def check_type_uri(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > 512 or not _TYPE_URI_RE.fullmatch(value):
        raise BadInput("expected an absolute URI", where)
    return value
