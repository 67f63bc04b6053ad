"""docs/format.md §8, the worked example, against a fresh demo (issue 19): the number of
ceremonies and their days, the published counts and file names, the verify summaries and
the genesis transcript's length. scripts/worked_example.py prints the facts of any run."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("worked_example",
                                                  ROOT / "scripts" / "worked_example.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_worked_example_matches_a_fresh_demo(audit_demo: dict[str, Any]) -> None:
    we = _script()
    workdir = Path(audit_demo["workdir"])
    run = we.facts(workdir)
    page = we.doc_facts((ROOT / "docs" / "format.md").read_text())
    assert run["ceremonies"] == audit_demo["ceremonies"] or \
        sorted(run["ceremonies"]) == sorted(audit_demo["ceremonies"])
    assert page["count"] == len(run["ceremonies"]), "§8: 'runs N ceremonies'"
    assert page["days"] == run["days"], "§8: the ceremony table (days and names)"
    assert page["published"] == (len(run["envelopes"]), len(run["records"])), \
        "§8: 'artifacts/ (N envelopes), records/ (M ceremony records)'"
    assert page["ok"] == run["envelopes"], "§8.5: the OK lines are the published envelopes"
    listing = we.verify_listing(workdir, we.CHECK_DAYS)
    total = len(run["envelopes"]) + run["log_files"]
    assert listing[-1] == f"{total} of {total} artifacts verified", listing
    late = we.verify_listing(workdir, we.AFTER_EXPIRY_DAYS)[-1]
    n, total, failed = page["summaries"][1]
    assert late == f"{n} of {total} artifacts verified; {failed} failed", \
        "§8.5: the summary of the run after expiry"
    assert page["summaries"][0] == (total, total, 0)
    assert page["genesis_entries"] == run["genesis_entries"], "§8.5: '- entries: N'"
