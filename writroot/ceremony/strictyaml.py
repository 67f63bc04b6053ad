"""Strict YAML: safe types only, duplicate keys refused, every value's line remembered.

Errors from later schema checks are mapped back to `file:line: field`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from writroot.errors import BadInput, excerpt, field_name, short

MAX_YAML_BYTES = 1024 * 1024
#: A plan is a few levels deep; anything far deeper is hostile.
MAX_DEPTH = 32
#: Plans hold small counts and versions; integers past this many digits are refused unread.
MAX_INT_DIGITS = 30
MAX_SAFE_INT = 2**53 - 1


@dataclass
class Located:
    """A parsed document and the source line of every field path in it."""

    value: Any
    lines: dict[str, int]
    source: str

    def where(self, path: str) -> str:
        """`file:line: path` for a schema path such as `operations[1].region`."""
        probe = path
        while probe and probe not in self.lines:
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        if not self.lines:  # a plan's source read back from its lock: no lines to name
            return f"{self.source}: {path}" if path else self.source
        line = self.lines.get(probe, 1)
        return f"{self.source}:{line}: {path}" if path else f"{self.source}:{line}"

    def rebase(self, exc: BadInput, root: str) -> BadInput:
        """Turn a schema error whose `where` starts with `root` into a located one."""
        where = exc.where or root
        path = where[len(root):].lstrip(".") if where.startswith(root) else where
        return BadInput(exc.message, self.where(path))


def load_file(path: Path) -> Located:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read: {exc.strerror}", str(path)) from None
    return load(text, str(path))


def load(text: bytes, source: str) -> Located:
    """Parse a plan or roster strictly. Size and nesting are bounded before anything is built:
    at most MAX_YAML_BYTES, MAX_DEPTH levels and integers of MAX_INT_DIGITS digits."""
    import yaml

    if len(text) > MAX_YAML_BYTES:
        raise BadInput(f"larger than {MAX_YAML_BYTES} bytes", source)
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"not UTF-8 (byte {exc.start})", source) from None
    loader = None
    try:  # the reader checks characters as soon as it is built: inside the try
        loader = _loader_class()(decoded)
        node = loader.get_single_node()
        if node is None:
            raise BadInput("empty document", source)
        lines: dict[str, int] = {}
        value = _convert(loader, node, "", lines, source, set())
    except yaml.YAMLError as exc:
        raise BadInput(f"malformed YAML: {_problem(exc)}",
                       f"{source}{_line(exc, decoded)}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return Located(value, lines, source)


def _problem(exc: Exception) -> str:
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["unreadable"])[0]
    return short(" ".join(str(problem).split()))


def _line(exc: Exception, text: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return f":{mark.line + 1}"
    position = getattr(exc, "position", None)  # a ReaderError: a character, not a token
    return f":{text.count(chr(10), 0, position) + 1}" if isinstance(position, int) else ""


@functools.cache
def _loader_class() -> Any:
    """yaml's SafeLoader, refusing a document nested deeper than MAX_DEPTH while it composes
    (before the recursion that builds values could run out of stack)."""
    import yaml

    class Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return Loader


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _convert(loader: Any, node: Any, path: str, lines: dict[str, int], source: str,
             seen: set[int]) -> Any:
    import yaml

    if id(node) in seen:  # anchors and aliases: refused (no "billion laughs")
        raise BadInput("YAML aliases are not allowed", f"{source}:{node.start_mark.line + 1}: "
                       f"{path}")
    seen.add(id(node))
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != \
                    "tag:yaml.org,2002:str":
                raise BadInput("keys must be plain strings",
                               f"{source}:{key_node.start_mark.line + 1}: {path or '(top)'}")
            key = key_node.value
            if not _utf8(key):
                raise BadInput("a key with a lone surrogate: not text",
                               f"{source}:{key_node.start_mark.line + 1}: {path or '(top)'}")
            if key == "<<":
                raise BadInput("YAML merge keys are not allowed",
                               f"{source}:{key_node.start_mark.line + 1}: {path or '(top)'}")
            child = f"{path}.{field_name(key)}" if path else field_name(key)
            if key in out:
                raise BadInput(f"duplicate key {excerpt(key)}",
                               f"{source}:{key_node.start_mark.line + 1}: {child}")
            out[key] = _convert(loader, value_node, child, lines, source, seen)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, item, f"{path}[{i}]", lines, source, seen)
                for i, item in enumerate(node.value)]
    if node.tag not in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:int",
                        "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"):
        raise BadInput(f"unsupported YAML type {excerpt(node.tag.rsplit(':', 1)[-1], 40)} "
                       "(quote the value)", f"{source}:{node.start_mark.line + 1}: {path}")
    if node.tag == "tag:yaml.org,2002:int" and len(node.value) > MAX_INT_DIGITS:
        raise BadInput(f"an integer of {len(node.value)} characters; at most {MAX_INT_DIGITS}",
                       f"{source}:{node.start_mark.line + 1}: {path}")
    try:
        value = loader.construct_object(node, deep=True)
    except ValueError:  # e.g. an integer YAML accepts and Python will not convert
        raise BadInput(f"unreadable value {excerpt(node.value)}",
                       f"{source}:{node.start_mark.line + 1}: {path}") from None
    if isinstance(value, str) and not _utf8(value):
        raise BadInput("a string with a lone surrogate (\\ud800-\\udfff escape): not text",
                       f"{source}:{node.start_mark.line + 1}: {path}")
    if isinstance(value, int) and not isinstance(value, bool) \
            and not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:  # canonical JSON could not hold it
        raise BadInput("an integer beyond 2^53 - 1", f"{source}:{node.start_mark.line + 1}: "
                       f"{path}")
    return value
