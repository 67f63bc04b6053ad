"""What a ceremony-binder statement verified alone is, and whether it is current.

An approval, an enrolment or a key request that verifies says only that its signer signed it;
read alone, `OK` could pass for a current approval of the plan at hand. `describe` says what it
approves or proves, for which plan or key, and whether it is in its validity window at the
reference time; for an approval, whether a ceremony record in the same report ran that plan.
Information only: it never changes a verdict. Pure.
"""

from __future__ import annotations

from datetime import datetime

from writroot.jsonio import format_time
from writroot.statements import Statement
from writroot.verify.report import ArtifactResult, Report

BINDER = ("approval", "enrolment", "key-request")


def _when(st: Statement, at: datetime) -> str:
    if at < st.not_before:
        return f"not valid before {format_time(st.not_before)}"
    if at > st.not_after:
        return f"expired {format_time(st.not_after)}"
    return f"current, until {format_time(st.not_after)}"


def describe(result: ArtifactResult, at: datetime, report: Report | None = None) -> str:
    """One line for a binder statement ("" for anything else)."""
    st = result.statement
    if st is None or st.type not in BINDER:
        return ""
    sub = st.subject
    if st.type == "approval":
        ran = "" if report is None else _ran(sub["plan_sha256"], report)
        return (f"approval of plan {sub['plan_sha256'][:16]}..., ceremony {sub['ceremony']}, "
                f"by custodian {sub['custodian']}, {_when(st, at)}{ran}")
    if st.type == "enrolment":
        member = sub["custodian"]
        return (f"enrolment of custodian {member['id']} ({member.get('name', '')}), key "
                f"{member['key'].keyid[:16]}..., signed {format_time(st.issued_at)}, "
                f"{_when(st, at)}")
    return (f"key request of region {sub['region']} for key {sub['key'].keyid[:16]}... "
            f"({sub['custody']} custody), ceremony {st.ceremony.get('id', '?')}, "
            f"{_when(st, at)}")


def _ran(plan_sha256: str, report: Report) -> str:
    records = [r for r in report.results if r.ok and r.statement is not None
               and r.statement.type == "ceremony-record"
               and r.statement.ceremony.get("plan_sha256") == plan_sha256]
    return "; a verified ceremony record ran this plan" if records else \
        "; no verified ceremony record here ran this plan"
