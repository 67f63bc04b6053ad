"""Catalogs and profiles named by a document, found locally and resolved offline.

trestle's profile resolver fetches whatever an import's href names (https, sftp) and reads
relative paths from the current directory. writroot walks the import graph itself first:
every href must be local and relative to the file that names it; it then hands trestle copies
whose imports point at absolute paths inside a throwaway workspace, so resolution never
leaves the machine and never depends on the working directory.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from writroot.errors import BadInput
from writroot.jsonio import loads_strict
from writroot.oscal import models
from writroot.oscal.checks import at, check_href, resource_href, root_of

#: Where a document's references point: a directory, or an explicit href -> file mapping.
Sources = Mapping[str, Path] | Path | None

#: The full SP 800-53 rev 5 catalog is about 10 MB of JSON; writroot's usual cap is 8 MiB.
MAX_OSCAL_BYTES = 32 * 1024 * 1024
MAX_IMPORT_DEPTH = 8
MAX_IMPORTED_DOCUMENTS = 32
_CACHE_SIZE = 8
# graph digest -> (what it defines, canonical SHA-256 of the top document); parsing and
# resolving the 1.8 MB SP 800-53 catalog costs about half a second.
_CACHE: dict[str, tuple[models.ControlIndex, str]] = {}


@dataclass(frozen=True)
class SourceRef:
    """A catalog or profile a document depends on, as found on this machine."""

    href: str  # as written in the document
    path: Path
    kind: str  # "catalog" or "profile"
    sha256: str  # of the file's RFC 8785 canonical JSON
    title: str


def read(path: Path, where: str) -> tuple[bytes, Any]:
    """The file's exact bytes and its strict parse (duplicate keys, NaN, size refused)."""
    try:
        if path.stat().st_size > MAX_OSCAL_BYTES:
            raise BadInput(f"file is larger than the {MAX_OSCAL_BYTES}-byte cap", where)
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}", where) from None
    return data, loads_strict(data, str(path), MAX_OSCAL_BYTES)


def base_dir(document: Path, sources: Sources) -> Path:
    """Where a document's relative references resolve: the directory given, else its own."""
    return sources if isinstance(sources, Path) else document.parent


def locate(href: str, base: Path, sources: Sources, where: str) -> Path:
    """The local file an href names: the caller's mapping wins, else relative to `base`."""
    if isinstance(sources, Mapping) and href in sources:
        path = Path(sources[href])
    else:
        check_href(href, where)
        path = base / unquote(href)  # an href is a URI reference: %20 names a space
    if not path.is_file():
        raise BadInput(f"{href!r} is not a local file here ({path}); give it with the sources "
                       "mapping or directory", where)
    return path


def follow(body: dict[str, Any], kind: str, href: str, sources: Sources, file: str, path: str
           ) -> tuple[str, str]:
    """An href as written at `path`, with `#uuid` replaced by that back-matter resource's JSON
    rlink (unless the caller's mapping names it): (href, `where` of the href used)."""
    where = at(file, path)
    if href.startswith("#") and not (isinstance(sources, Mapping) and href in sources):
        check_href(href, where)
        href, path = resource_href(body, kind, href, where)
        where = at(file, path)
    return href, where


@dataclass
class _Node:
    path: Path
    data: bytes
    kind: str
    body: dict[str, Any]
    imports: list[int]  # node numbers, in import order


class _Graph:
    """The import graph under one catalog or profile, every file read once."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.nodes: list[_Node] = []

    def add(self, path: Path, where: str, base: Path | None = None,
            stack: tuple[Path, ...] = (), loaded: tuple[bytes, Any] | None = None) -> int:
        """Read `path` (unless `loaded` gives its bytes and parse) and what it imports;
        `base` resolves its imports (default: its directory)."""
        real = path.resolve()
        if real in stack:
            raise BadInput(f"import cycle through {path}", where)
        if len(stack) > MAX_IMPORT_DEPTH or len(self.nodes) >= MAX_IMPORTED_DOCUMENTS:
            raise BadInput("imports nest too deeply or name too many documents", where)
        data, document = loaded or read(path, where)
        kind, body = root_of(document, str(path), ("catalog", "profile"))
        node = _Node(path, data, kind, body, [])
        self.nodes.append(node)
        number = len(self.nodes) - 1
        if kind == "profile":
            imports = body.get("imports")
            for i, imp in enumerate(imports if isinstance(imports, list) else []):
                node.imports.append(self._follow(node, base or path.parent, imp, i,
                                                 (*stack, real)))
        return number

    def _follow(self, node: _Node, base: Path, imp: Any, i: int, stack: tuple[Path, ...]
                ) -> int:
        path = f"profile.imports[{i}].href"
        href = imp.get("href") if isinstance(imp, dict) else None
        if not isinstance(href, str):
            raise BadInput("an import needs an href", at(str(node.path), path))
        href, where = follow(node.body, "profile", href, self.sources, str(node.path), path)
        target = locate(href, base, self.sources, where)
        return self.add(target, where, None, stack)

    def digest(self) -> str:
        h = hashlib.sha256()
        for node in self.nodes:
            h.update(hashlib.sha256(node.data).digest())
            h.update(json.dumps(node.imports).encode())
        return h.hexdigest()


def _canonical_sha256(document: Any) -> str:
    from writroot.jsonio import canonical

    return hashlib.sha256(canonical(document)).hexdigest()


def _load_catalog(node: _Node) -> Any:
    where = str(node.path)
    model = models.parse("catalog", node.body, where)
    models.validate(model, "catalog", where)
    return model


def _resolve(graph: _Graph, where: str) -> Any:
    """Hand trestle's resolver the graph, rewritten to absolute paths in a scratch workspace."""
    from trestle.core.profile_resolver import ProfileResolver

    with tempfile.TemporaryDirectory(prefix="writroot-oscal-") as scratch:
        root = Path(scratch)
        (root / ".trestle").mkdir()  # trestle's fetchers insist on a workspace
        copies = [root / f"{n}.json" for n in range(len(graph.nodes))]
        for node, copy in zip(graph.nodes, copies, strict=True):
            if node.kind == "catalog":
                copy.write_bytes(node.data)  # exactly the bytes that were checked
                continue
            body = json.loads(json.dumps(node.body))
            imports = body.get("imports")
            for imp, target in zip(imports if isinstance(imports, list) else [], node.imports,
                                   strict=True):
                imp["href"] = str(copies[target])
            copy.write_text(json.dumps({"profile": body}), encoding="utf-8")
        try:
            with models.no_warnings(where):
                return ProfileResolver.get_resolved_profile_catalog(root, str(copies[0]))
        except BadInput:
            raise
        except Exception as exc:  # trestle raises TrestleError, KeyError, ... for bad profiles
            raise BadInput(f"does not resolve offline: {exc}", where) from None


def resolve_profile(path: Path, sources: Sources, document: Any = None) -> Any:
    """Resolve a local profile (whose imports are local too) into a trestle catalog model;
    `document` is the profile as already read and checked, so that is what gets resolved."""
    graph = _Graph(sources)
    loaded = None if document is None else (json.dumps(document).encode(), document)
    graph.add(path, str(path), base_dir(path, sources), loaded=loaded)
    return _resolve(graph, at(str(path), "profile.imports"))


def load_source(href: str, base: Path, sources: Sources, where: str
                ) -> tuple[SourceRef, models.ControlIndex]:
    """The catalog or (resolved) profile an href names, and what it defines."""
    path = locate(href, base, sources, where)
    graph = _Graph(sources)
    graph.add(path, where)
    top = graph.nodes[0]
    key = graph.digest()
    cached = _CACHE.get(key)
    if cached is None:
        if top.kind == "catalog":
            catalog = _load_catalog(top)
        else:
            for node in graph.nodes:
                if node.kind == "catalog":
                    _load_catalog(node)  # the same no-warnings rule for what it imports
            catalog = _resolve(graph, at(str(path), "profile.imports"))
        cached = models.index(catalog), _canonical_sha256({top.kind: top.body})
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = cached
    found, sha256 = cached
    metadata = top.body.get("metadata")
    title = metadata.get("title") if isinstance(metadata, dict) else None
    return SourceRef(href, path, top.kind, sha256, str(title or found.title)), found
