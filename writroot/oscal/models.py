"""compliance-trestle glue: OSCAL models, trestle's validators, and "any warning is a failure".

trestle (and pydantic under it) is imported inside these functions only: `writroot --version`
and every command that never touches OSCAL must not pay for it (DESIGN §7).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from writroot.errors import BadInput
from writroot.oscal.checks import at

_LOGGERS = ("trestle", "pydantic")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def no_warnings(where: str) -> Iterator[None]:
    """Run trestle code; a warning it logs or raises makes the document bad input.

    trestle reports many real problems (unreferenced resources, duplicates, parameters it
    could not set) only as log warnings and carries on; a signed baseline must not.
    ResourceWarnings are the garbage collector's, not the document's, and are ignored.
    """
    handler = _Collect()
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.propagate = False  # reported as our error instead of printed
        if lg.getEffectiveLevel() > logging.WARNING:
            lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        for lg, (level, propagate) in zip(loggers, saved, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate
    messages = handler.messages + [str(w.message) for w in caught
                                   if not issubclass(w.category, ResourceWarning)]
    if messages:
        more = f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""
        raise BadInput(f"trestle warned: {messages[0].strip()}{more}", where)


def model_class(kind: str) -> Any:
    if kind == "component-definition":
        from trestle.oscal.component import ComponentDefinition

        return ComponentDefinition
    if kind == "profile":
        from trestle.oscal.profile import Profile

        return Profile
    from trestle.oscal.catalog import Catalog

    return Catalog


def _is_key(part: Any) -> bool:
    # pydantic puts union member names (e.g. "Import1", "constr(...)") into error locations;
    # OSCAL field names are lowercase words joined by hyphens.
    return isinstance(part, int) or (isinstance(part, str) and part.replace("-", "").isalnum()
                                     and part == part.lower())


def _location(kind: str, loc: tuple[Any, ...]) -> str:
    path = kind
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _is_key(part):
            path += f".{part}"
    return path


def _describe(error: Any) -> str:
    kind, loc = error["type"], error["loc"]
    name = next((p for p in reversed(loc) if isinstance(p, str) and _is_key(p)), "")
    if kind == "extra_forbidden":
        return f"unknown field {name!r}"
    if kind == "missing":
        return f"missing field {name!r}"
    if kind == "timezone_aware":
        return "naive timestamp refused: give a timezone (Z or +HH:MM)"
    return f"not valid OSCAL: {error['msg']}"


def parse(kind: str, body: dict[str, Any], where: str) -> Any:
    """Load the body with trestle's OSCAL 1.2 model (1.1.x documents load too).

    trestle's pre-parse compatibility check runs first (its `validate` command does the same),
    then the pydantic model, which refuses unknown fields; the first problem is reported with
    its OSCAL path.
    """
    from pydantic import ValidationError
    from trestle.core.oscal_backward_compatibility import check_raw_oscal

    with no_warnings(at(where, kind)):
        issues = check_raw_oscal({kind: body})
    for issue in issues:
        path = issue.field_path
        path = path if path.startswith(kind) else f"{kind}.{path}"
        raise BadInput(f"OSCAL 1.2 compatibility: {issue.message}", at(where, path))
    try:
        with no_warnings(at(where, kind)):
            return model_class(kind).model_validate(body)
    except ValidationError as exc:
        errors = exc.errors()
        # The most useful error first: a stray field explains the union noise after it.
        errors.sort(key=lambda e: e["type"] != "extra_forbidden")
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise BadInput(_describe(first) + more,
                       at(where, _location(kind, tuple(first["loc"])))) from None


def validate(model: Any, kind: str, where: str) -> None:
    """Run every validator trestle registers (what `trestle validate -a` runs)."""
    import trestle.core.validator_factory as factory
    from trestle.core.all_validator import AllValidator

    for validator in factory.validator_factory.get_all():
        if isinstance(validator, AllValidator):
            continue  # it only reruns the others
        with no_warnings(at(where, kind)):
            ok = validator.model_is_valid(model, False, None)
        if not ok:
            raise BadInput(f"trestle's {type(validator).__name__} refused it: "
                           f"{(validator.error_msg() or '').strip()}", at(where, kind))


@dataclass(frozen=True)
class ControlIndex:
    """What a catalog (or resolved profile) defines: controls, their parameters and parts."""

    title: str
    params: dict[str, frozenset[str]]  # control id -> its parameter ids
    parts: dict[str, frozenset[str]]  # control id -> the ids of its parts (statement ids)
    param_owner: dict[str, str]  # parameter id -> control id

    @property
    def control_ids(self) -> frozenset[str]:
        return frozenset(self.params)


def index(catalog: Any) -> ControlIndex:
    from trestle.core.catalog.catalog_interface import CatalogInterface

    params: dict[str, frozenset[str]] = {}
    parts: dict[str, frozenset[str]] = {}
    owner: dict[str, str] = {}
    for control in CatalogInterface(catalog).get_all_controls_from_dict():
        cid = str(control.id)
        ids = frozenset(str(p.id) for p in control.params or [])
        params[cid] = ids
        owner.update((pid, cid) for pid in ids)
        found: set[str] = set()
        stack = list(control.parts or [])
        while stack:
            part = stack.pop()
            if part.id:
                found.add(str(part.id))
            stack.extend(part.parts or [])
        parts[cid] = frozenset(found)
    return ControlIndex(str(catalog.metadata.title), params, parts, owner)
