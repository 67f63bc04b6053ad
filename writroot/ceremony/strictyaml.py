"""Strict YAML: safe types only, duplicate keys refused, every value's line remembered.

Errors from later schema checks are mapped back to `file:line: field`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from writroot.errors import BadInput

MAX_YAML_BYTES = 1024 * 1024


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
    import yaml

    if len(text) > MAX_YAML_BYTES:
        raise BadInput(f"larger than {MAX_YAML_BYTES} bytes", source)
    try:
        loader = yaml.SafeLoader(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadInput("not UTF-8", source) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise BadInput("empty document", source)
        lines: dict[str, int] = {}
        value = _convert(loader, node, "", lines, source, set())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BadInput(f"malformed YAML: {problem}", f"{source}{line}") from None
    finally:
        loader.dispose()
    return Located(value, lines, source)


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
            if key == "<<":
                raise BadInput("YAML merge keys are not allowed",
                               f"{source}:{key_node.start_mark.line + 1}: {path or '(top)'}")
            child = f"{path}.{key}" if path else key
            if key in out:
                raise BadInput(f"duplicate key {key!r}",
                               f"{source}:{key_node.start_mark.line + 1}: {child}")
            out[key] = _convert(loader, value_node, child, lines, source, seen)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, item, f"{path}[{i}]", lines, source, seen)
                for i, item in enumerate(node.value)]
    if node.tag not in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:int",
                        "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"):
        raise BadInput(f"unsupported YAML type {node.tag.rsplit(':', 1)[-1]!r} "
                       "(quote the value)", f"{source}:{node.start_mark.line + 1}: {path}")
    return loader.construct_object(node, deep=True)
