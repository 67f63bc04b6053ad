"""writroot benchmarks: `python -m bench [--json]` measures everything side by side in one run.

Sections: engines (sign/verify per engine), hsm (custody unseal-and-sign against the raw engine),
verify (artifacts per second through the verify core), native (native custody on the PKCS#11 3.2
test tokens against wrapped custody and the raw engine; also `python -m bench.native`), log
(transparency-log appends, inclusion proofs and a 1,000,000-entry log as tiles; also
`python -m bench.log`), startup (CLI cold start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    """One measurement; `value` is None when it could not be taken (engine unavailable)."""

    section: str
    what: str
    value: float | None
    unit: str
    target: float | None = None
    higher_is_better: bool = False
    note: str = ""

    @property
    def status(self) -> str:
        if self.value is None:
            return "SKIP"
        if self.target is None:
            return ""
        ok = self.value >= self.target if self.higher_is_better else self.value <= self.target
        return "PASS" if ok else "FAIL"

    @property
    def target_text(self) -> str:
        if self.target is None:
            return ""
        return f"{'>=' if self.higher_is_better else '<='} {self.target:g} {self.unit}"

    def to_json(self) -> dict[str, Any]:
        return {"section": self.section, "what": self.what, "value": self.value,
                "unit": self.unit, "target": self.target_text or None,
                "status": self.status or None, "note": self.note or None}
