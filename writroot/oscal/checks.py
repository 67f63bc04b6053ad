"""Checks on the raw OSCAL JSON that trestle does not make, each naming the OSCAL path.

Paths are written the way OSCAL documents spell them, e.g.
`component-definition.components[0].control-implementations[0].source`, so an error points
at the exact field in the file a person has open. Nothing here imports trestle.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from writroot.errors import BadInput

ROOTS = ("catalog", "profile", "component-definition")

_UUID4_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-"
                       r"[0-9a-fA-F]{12}")
# A value that looks like a date-time; group "tz" tells whether it carries an offset.
_DATETIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
                          r"(?P<tz>Z|[+-][0-9]{2}:?[0-9]{2})?")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_FRAGMENT_RE = re.compile(r"#[A-Za-z0-9_.:-]+")
_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
# Markdown links in prose, the way trestle's links validator finds uuid references.
_MD_LINK_RE = re.compile(r"\[([^\]]*)\]\(([^)]*)\)")


def at(where: str, path: str) -> str:
    """`file: oscal.path`, the `where` of every OSCAL error."""
    return f"{where}: {path}"


def walk(node: Any, path: str) -> Iterator[tuple[str, str, Any, str]]:
    """Yield (path of the field, field name, value, path of its parent) for every field."""
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}"
            yield child, key, value, path
            yield from walk(value, child)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")


def root_of(document: Any, where: str, expected: tuple[str, ...] = ROOTS
            ) -> tuple[str, dict[str, Any]]:
    """The single root key (the model type) and its body; anything else at the root is refused."""
    if not isinstance(document, dict) or len(document) != 1:
        raise BadInput("an OSCAL document is an object with one root field "
                       f"({', '.join(expected)})", where)
    (kind, body), = document.items()
    if kind not in expected:
        raise BadInput(f"expected an OSCAL {' or '.join(expected)}, found {kind!r}",
                       at(where, kind))
    if not isinstance(body, dict):
        raise BadInput("expected an object", at(where, kind))
    return kind, body


def check_href(value: Any, where: str) -> str:
    """A reference must be a `#fragment` or a relative path to a local file inside the tree.

    writroot documents are verified offline, across an air gap: a URL would have to be fetched
    (or would silently mean something different on the other side), and an absolute path or
    `..` would reach outside the directory that is carried and hashed.
    """
    if not isinstance(value, str) or not value:
        raise BadInput("expected a non-empty reference", where)
    if value.startswith("#"):
        if not _FRAGMENT_RE.fullmatch(value):
            raise BadInput(f"malformed fragment reference {value!r}", where)
        return value
    if _SCHEME_RE.match(value):
        scheme = value.split(":", 1)[0].lower()
        raise BadInput(f"{scheme}: reference {value!r} refused: writroot verifies offline, "
                       "so name a local file by a relative path", where)
    decoded = unquote(value)
    if (any(c.isspace() for c in value)
            or any(ord(c) < 0x20 or c in "\\\x7f" for c in decoded)):
        raise BadInput(f"reference {value!r} has backslashes, spaces or control characters", where)
    if decoded.startswith("/"):
        raise BadInput(f"absolute path {value!r} refused: use a path relative to the document",
                       where)
    if "?" in decoded or "#" in decoded:
        raise BadInput(f"reference {value!r} has a query or fragment: name a local file", where)
    if ".." in decoded.split("/"):
        raise BadInput(f"reference {value!r} climbs out of the document's directory ('..')",
                       where)
    return value


def check_references(body: dict[str, Any], kind: str, where: str) -> None:
    """Every `href` and control-implementation `source` is local and relative."""
    for path, key, value, _ in walk(body, kind):
        if key in ("href", "source"):
            check_href(value, at(where, path))


def check_timestamps(body: dict[str, Any], kind: str, where: str) -> None:
    """No naive date-times: a time without an offset means different instants in different
    enclaves, and OSCAL 1.2 requires the offset anyway."""
    for path, _, value, _ in walk(body, kind):
        if isinstance(value, str):
            m = _DATETIME_RE.fullmatch(value)
            if m and not m.group("tz"):
                raise BadInput(f"naive timestamp {value!r} refused: give a timezone "
                               "(Z or +HH:MM)", at(where, path))


def check_uuids(body: dict[str, Any], kind: str, where: str) -> None:
    """Identifiers and references are version 4 (random) UUIDs; definitions are unique.

    OSCAL also allows name-based v5 UUIDs, which are predictable from public inputs; writroot
    asks for random ones so two documents never collide by construction.
    """
    seen: dict[str, str] = {}
    for path, key, value, _ in walk(body, kind):
        if key == "uuid" or key.endswith("-uuid"):
            values = [(path, value)]
        elif key.endswith("-uuids"):
            if not isinstance(value, list):
                continue  # the model check reports the wrong type
            values = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
        else:
            continue
        for p, v in values:
            if not isinstance(v, str) or not _UUID4_RE.fullmatch(v):
                raise BadInput(f"{v!r} is not a version 4 (random) UUID", at(where, p))
            if key == "uuid":
                first = seen.setdefault(v.lower(), p)
                if first != p:
                    raise BadInput(f"duplicate uuid {v} (first defined at {first})", at(where, p))


def check_version(body: dict[str, Any], kind: str, where: str) -> str:
    """metadata.version goes into the in-toto subject name, so it must be a plain token."""
    metadata = body.get("metadata")
    version = metadata.get("version") if isinstance(metadata, dict) else None
    if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
        raise BadInput("metadata.version must be 1-64 characters of [A-Za-z0-9._+-], the "
                       "first a letter or digit (it names the signed subject)",
                       at(where, f"{kind}.metadata.version"))
    return version


def check_roles_and_parties(body: dict[str, Any], kind: str, where: str) -> None:
    """Every role-id and party-uuid used is defined in metadata (trestle only checks the
    metadata's own responsible-parties)."""
    metadata = body.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    roles = {r.get("id") for r in _list(metadata.get("roles")) if isinstance(r, dict)}
    parties = {p.get("uuid") for p in _list(metadata.get("parties")) if isinstance(p, dict)}
    for path, key, value, _ in walk(body, kind):
        if key == "role-id" and value not in roles:
            raise BadInput(f"role {value!r} is not defined in metadata.roles", at(where, path))
        if key == "party-uuids" and isinstance(value, list):
            for i, v in enumerate(value):
                if v not in parties:
                    raise BadInput(f"party {v!r} is not defined in metadata.parties",
                                   at(where, f"{path}[{i}]"))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def resources(body: dict[str, Any]) -> list[Any]:
    """The back-matter resources, or [] (a wrong type is left for the model check)."""
    back = body.get("back-matter")
    return _list(back.get("resources")) if isinstance(back, dict) else []


def uuid_references(body: dict[str, Any], kind: str) -> set[str]:
    """`#uuid` references in hrefs and prose links (what trestle's links validator counts)."""
    refs: set[str] = set()
    for _, key, value, _ in walk(body, kind):
        if not isinstance(value, str):
            continue
        targets = [value] if key == "href" else []
        if key == "prose":
            targets += [m.group(2) for m in _MD_LINK_RE.finditer(value)]
        refs.update(t[1:] for t in targets if t.startswith("#"))
    return refs


def check_resources_referenced(body: dict[str, Any], kind: str, where: str) -> None:
    """Every back-matter resource is referenced by a `#uuid` href or prose link.

    trestle's links validator only warns about this, and a `source` does not count for it;
    writroot treats every trestle warning as a failure, so report it here with its path.
    """
    refs = uuid_references(body, kind)
    for i, res in enumerate(resources(body)):
        if isinstance(res, dict) and res.get("uuid") not in refs:
            raise BadInput(f"back-matter resource {res.get('uuid')} is not referenced by any "
                           "'#uuid' href or prose link",
                           at(where, f"{kind}.back-matter.resources[{i}]"))


def resource_href(body: dict[str, Any], kind: str, ref: str, where: str) -> tuple[str, str]:
    """Resolve `#uuid` to the local rlink of that back-matter resource: (href, its path)."""
    for i, res in enumerate(resources(body)):
        if isinstance(res, dict) and res.get("uuid") == ref[1:]:
            rlinks = res.get("rlinks")
            for j, rlink in enumerate(rlinks if isinstance(rlinks, list) else []):
                href = rlink.get("href") if isinstance(rlink, dict) else None
                if isinstance(href, str) and href.endswith(".json"):
                    return href, f"{kind}.back-matter.resources[{i}].rlinks[{j}].href"
            raise BadInput(f"back-matter resource {ref[1:]} has no JSON rlink",
                           at(where, f"{kind}.back-matter.resources[{i}]"))
    raise BadInput(f"{ref} names no back-matter resource", where)


def common_checks(document: Any, where: str, expected: tuple[str, ...] = ROOTS
                  ) -> tuple[str, dict[str, Any], str]:
    """The checks every writroot-signed OSCAL document passes: (kind, body, version)."""
    kind, body = root_of(document, where, expected)
    check_references(body, kind, where)
    check_timestamps(body, kind, where)
    check_uuids(body, kind, where)
    version = check_version(body, kind, where)
    check_roles_and_parties(body, kind, where)
    check_resources_referenced(body, kind, where)
    return kind, body, version
