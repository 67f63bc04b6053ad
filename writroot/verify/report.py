"""What verification reports: findings per artifact, named after the rule they enforce."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from writroot.jsonio import format_time

if TYPE_CHECKING:
    from writroot.statements import Statement


#: Why a finding was made: a rule does not hold; the input is not what it must be; an
#: engine failed; or a statement it depends on is not trusted (named in the message).
CAUSES = ("rule", "malformed", "engine", "upstream")


@dataclass(frozen=True)
class Finding:
    artifact: str
    check: str
    message: str
    malformed: bool = False
    cause: str = "rule"

    def to_json(self) -> dict[str, Any]:
        return {"artifact": self.artifact, "check": self.check, "message": self.message,
                "cause": self.cause}


@dataclass
class ArtifactResult:
    name: str
    type: str | None = None
    serial: str | None = None
    issuer_keyid: str | None = None
    findings: list[Finding] = field(default_factory=list)
    checked_by: set[str] = field(default_factory=set)
    statement: Statement | None = None

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {"artifact": self.name, "type": self.type, "serial": self.serial,
                "issuer_keyid": self.issuer_keyid, "ok": self.ok,
                "checked_by": sorted(self.checked_by),
                "findings": [f.to_json() for f in self.findings]}


@dataclass
class Report:
    at: datetime
    anchor: str
    independent: bool
    results: list[ArtifactResult]
    #: The fleet root in force at the end of the rotation chain, and its version.
    fleet_root: str | None = None
    fleet_version: int | None = None
    #: The highest revocation-list sequence applied (None: no list given).
    revocation_sequence: int | None = None
    #: The audit package verified (path, manifest digest, read-aloud words), if any.
    package: dict[str, Any] | None = None

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.results for f in r.findings]

    @property
    def ok(self) -> bool:
        return bool(self.results) and not self.findings

    @property
    def malformed(self) -> bool:
        return any(f.malformed for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "at": format_time(self.at), "anchor": self.anchor,
                "fleet_root": self.fleet_root, "fleet_version": self.fleet_version,
                "revocation_sequence": self.revocation_sequence,
                "independent": self.independent, "artifacts": [r.to_json() for r in self.results],
                "findings": [f.to_json() for f in self.findings],
                **({"package": self.package} if self.package is not None else {})}
