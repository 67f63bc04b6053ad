"""Plans and locks are hostile input: every malformed one gets one line naming the file, with
exit 2 (1 for a policy refusal, 0 when the mutant is still a valid plan) — never an internal
fault, never a traceback, never a screenful of the input.

A property test mutates real plans (the standard plans of ceremonies/, filled from the demo's
real ceremonies as tests/test_standard_plans.py does) and their locks, and runs `writroot
ceremony plan` / `ceremony show` in-process on each mutant. Fixed cases cover what a mutation
campaign found once.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Token
from tests.test_standard_plans import CEREMONIES, FILLERS, Demo, lock_cmd, make_demo, show_cmd
from writroot.cli import main

#: Plans whose mutants are tried (one of each kind of signer and input).
SEEDS = ("genesis", "emergency-revocation", "enclave-bundles", "regional-issuance",
         "fleet-rotation", "oscal-overlay")
#: No answer to a bad plan is longer than this (the review of a valid mutant included).
MAX_OUTPUT = 256 * 1024

DEEP_LIST = "[" * 3000 + "]" * 3000
HOSTILE_YAML = ["9" * 4400, DEEP_LIST, "{a: " * 2000 + "1" + "}" * 2000, "x" * 200_000,
                "\x01", "a\u202eb", "\x1b[2J\x1b]0;pwned\x07", "!!python/object:os.system",
                "&a [*a, *a]", "*a", "1.5", "2027-01-01", "null", "~", "[]", "{}", "-1",
                "0x10", "true", '"\\x00"', "'", '"', "? [a]\n: b", "<<: {a: 1}", "{a: 1, a: 2}",
                "!!binary aGk=", "1e400", ".nan", "- - - -", "|\n  text", "0o777", "+1",
                "9" * 30, "9" * 31, "-" * 70, "%YAML 1.1", "---\n---", "..."]


def _run(*args: str) -> tuple[int, str, str]:
    """The real entry point, in-process (fast), with its exit code and both streams."""
    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code or 0
    return int(code), out.getvalue(), err.getvalue()


def _assert_answer(code: int, out: str, err: str, names: str) -> None:
    assert "Traceback" not in out + err and "internal fault" not in out + err, err[:2000]
    assert len(out) + len(err) < MAX_OUTPUT
    if code == 0:
        return
    assert code in (1, 2), err[:2000]
    lines = err.splitlines()
    assert len(lines) == 1, err[:2000]
    assert lines[0].startswith("writroot: error: ") and lines[0].isprintable(), lines[0][:300]
    assert len(lines[0]) < 500, lines[0]  # excerpts, not the input (the CLI cuts at 600)
    assert names in lines[0], lines[0][:300]


@dataclass
class Seeds:
    """The demo fleet (its anchor, for the commands) and, for each seed plan, its directory
    (inputs filled in), its YAML text and its lock's text."""

    demo: Demo
    plans: dict[str, tuple[Path, str, str]]

    def lock(self, plan: Path, *extra: str) -> tuple[int, str, str]:
        return _run(*lock_cmd(plan, self.demo.anchor, self.demo.published), *extra)

    def show(self, locked: Path, *extra: str) -> tuple[int, str, str]:
        return _run(*show_cmd(locked, self.demo.anchor, self.demo.published), *extra)


@pytest.fixture(scope="module")
def seeds(audit_demo: dict[str, Any], make_token: Callable[[str], Token],
          tmp_path_factory: pytest.TempPathFactory) -> Seeds:
    root = tmp_path_factory.mktemp("hostile")
    out = Seeds(make_demo(audit_demo, make_token, root), {})
    for name in SEEDS:
        d = root / name
        d.mkdir()
        text = FILLERS[name](out.demo, d, (CEREMONIES / f"{name}.yaml").read_text())
        (d / "plan.yaml").write_text(text)
        code, _out, err = out.lock(d / "plan.yaml", "--json")
        assert code == 0, err
        out.plans[name] = (d, text, (d / "plan.lock.json").read_text())
    return out


def _mutate_text(data: st.DataObject, text: str) -> bytes:
    """One mutation of a plan's text: a value, a line, a few characters or a byte."""
    lines = text.splitlines(keepends=True)
    kind = data.draw(st.sampled_from(["value", "insert", "line", "byte"]))
    i = data.draw(st.integers(0, len(lines) - 1))
    if kind == "value" and ": " in lines[i]:
        head = lines[i].split(": ", 1)[0]
        lines[i] = f"{head}: {data.draw(st.sampled_from(HOSTILE_YAML))}\n"
    elif kind == "line":
        action = data.draw(st.sampled_from(["delete", "duplicate", "indent", "dedent"]))
        line = lines.pop(i)
        lines[i:i] = {"delete": [], "duplicate": [line, line], "indent": ["  " + line],
                      "dedent": [line[2:]]}[action]
    elif kind == "insert":
        where = data.draw(st.integers(0, len(text)))
        junk = data.draw(st.text(min_size=1, max_size=8))
        return (text[:where] + junk + text[where:]).encode("utf-8", "surrogatepass")
    raw = bytearray("".join(lines).encode())
    if kind == "byte" and raw:
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    return bytes(raw)


#: Any code point, lone surrogates included (json.dumps writes them as \\udxxx escapes).
_ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=20)
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _ANY_TEXT,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(_ANY_TEXT, children, max_size=3), max_leaves=8)
#: Values that only exist as text (json cannot dump them): swapped in after dumping.
RAW = {"@deep@": DEEP_LIST, "@deep990@": "[" * 990 + "]" * 990, "@bigint@": "9" * 5000,
       "@nan@": "NaN", "@long@": json.dumps("\x1b[31m" * 50_000)}


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*here, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*here, i))
    return out


def _mutate_lock(data: st.DataObject, text: str) -> bytes:
    """One mutation of a locked plan: a field replaced, removed or added, or a byte."""
    doc = json.loads(text)
    if data.draw(st.integers(0, 9)) == 0:
        raw = bytearray(text.encode())
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        return bytes(raw)
    path = data.draw(st.sampled_from(_paths(doc)[1:]))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    action = data.draw(st.sampled_from(["replace", "raw", "delete", "add", "wrap"]))
    if action == "replace":
        parent[path[-1]] = data.draw(_JSON_VALUES)
    elif action == "raw":
        parent[path[-1]] = data.draw(st.sampled_from(sorted(RAW)))
    elif action == "delete":
        del parent[path[-1]]
    elif action == "add" and isinstance(parent, dict):
        parent[data.draw(st.sampled_from(["x" * 100_000, "\u202e", "op", "", "1"]))] = 1
    else:
        parent[path[-1]] = [parent[path[-1]]]
    dumped = json.dumps(doc)
    for marker, raw_text in RAW.items():
        dumped = dumped.replace(json.dumps(marker), raw_text)
    return dumped.encode()


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_mutated_plans_get_one_line_naming_the_file(seeds: Seeds, data: st.DataObject) -> None:
    d, text, _lock = seeds.plans[data.draw(st.sampled_from(SEEDS))]
    mutant = d / "mutant.yaml"
    mutant.write_bytes(_mutate_text(data, text))
    target = d / "mutant.lock.json"
    as_json = data.draw(st.booleans())
    code, out, err = seeds.lock(mutant, "--out", str(target), *(["--json"] if as_json else []))
    _assert_answer(code, out, err, str(d))
    assert target.exists() == (code == 0)  # nothing written on failure
    target.unlink(missing_ok=True)


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_mutated_locks_get_one_line_naming_the_file(seeds: Seeds, data: st.DataObject) -> None:
    d, _text, lock = seeds.plans[data.draw(st.sampled_from(SEEDS))]
    mutant = d / "mutant.lock.json"
    mutant.write_bytes(_mutate_lock(data, lock))
    as_json = data.draw(st.booleans())
    code, out, err = seeds.show(mutant, *(["--json"] if as_json else []))
    _assert_answer(code, out, err, str(d))


# -- what the mutation campaign found (issue 20) ---------------------------------------------

def _plan_case(seeds: Seeds, name: str, old: str, new: str) -> tuple[int, str]:
    d, text, _lock = seeds.plans[name]
    assert old in text
    (d / "case.yaml").write_bytes(text.replace(old, new, 1).encode())
    code, out, err = seeds.lock(d / "case.yaml", "--out", str(d / "case.lock.json"))
    assert not (d / "case.lock.json").exists()
    _assert_answer(code, out, err, str(d / "case.yaml"))
    return code, err


@pytest.mark.parametrize("old,new,expect", [
    ("fleet: writsov", "fleet: wr\x01itsov", ":18: malformed YAML: unacceptable character"),
    ("sequence: 2", "sequence: " + "9" * 4301, "operations[0].sequence: an integer of 4301"),
    ("validity_days: 30", "validity_days: " + DEEP_LIST, "nested deeper than 32 levels"),
    ("validity_days: 30", "validity_days: " + "{a: " * 2000 + "1" + "}" * 2000,
     "nested deeper than 32 levels"),
    ("validity_days: 30", "validity_days:\n      " + "- " * 3000 + "1",
     "nested deeper than 32 levels"),
    ("fleet: writsov", "fleet: writsov\n\"" + "\u202e" * 70 + "\": 1",
     "unknown field '\\u202e\\u202e"),
    ("reason: superseded", "reason: " + "x" * 1_100_000, "larger than"),
    ("artifact: federation-key-conus-1-conus-nss-1.dsse.json", 'artifact: "a\\0b\\e[2J"',
     "no such regular file 'a\\x00b\\x1b[2J'"),
    ("artifact: federation-key-conus-1-conus-nss-1.dsse.json", "artifact: " + "n" * 1000,
     "cannot read input 'nnnn"),
    ("sequence: 2", "sequence: 9007199254740992", "sequence: an integer beyond 2^53 - 1"),
    ("reason: superseded", 'reason: "\\ud800"', "reason: a string with a lone surrogate"),
])
def test_malformed_plan_cases(seeds: Seeds, old: str, new: str, expect: str) -> None:
    code, err = _plan_case(seeds, "emergency-revocation", old, new)
    assert code == 2 and expect in err, err
    assert len(err) < 400


def test_policy_that_is_not_an_object(seeds: Seeds) -> None:
    _d, text, _lock = seeds.plans["genesis"]
    start = text.index("    policy:\n")
    end = text.index("  - op: sign-regional-root")
    code, err = _plan_case(seeds, "genesis", text[start:end], "    policy: x\n")
    assert code == 2 and "operations[1].policy: expected an object of policy fields" in err


@pytest.mark.parametrize("edit,expect", [
    (lambda doc: doc["operations"][0].update(op={"a": 1}), "operations must be a non-empty "
     "list of known operations"),
    (lambda doc: doc["operations"][0].update(op=["sign-revocation-list"]), "known operations"),
    (lambda doc: doc.update({"x" * 100_000: 1}), "unknown ['xxxx"),
    (lambda doc: doc["operations"][0].update({"\x1b[2J" * 1000: True}),
     "is not a string, integer, list or object"),
    (lambda doc: doc.update(ceremony=2**53), "ceremony: not a locked plan: an integer beyond"),
    (lambda doc: doc["source"].update(plan=-(2**60)), "source.plan: not a locked plan: an "
     "integer beyond"),
    (lambda doc: doc.update(ceremony="\ud800"), "a string with a lone surrogate"),
    (lambda doc: doc["roster"]["roster"]["custodians"][0]["key"].update(
        algorithm="\x1b[31m" * 50_000), "unknown algorithm '\\x1b[31m"),
    (lambda doc: doc["fleet_root"].update(path="\x1b[31m" * 50_000),
     "emergency-revocation/'\\x1b[31m"),
])
def test_malformed_lock_cases(seeds: Seeds, edit: Any, expect: str) -> None:
    d, _text, lock = seeds.plans["emergency-revocation"]
    doc = json.loads(lock)
    edit(doc)
    (d / "case.lock.json").write_text(json.dumps(doc))
    code, out, err = seeds.show(d / "case.lock.json")
    _assert_answer(code, out, err, str(d))  # the lock, or an input path it names
    assert code == 2 and expect in err and len(err) < 700, err


@pytest.mark.parametrize("depth", [98, 101, 980, 5000])
def test_deep_lists_in_a_lock(seeds: Seeds, depth: int) -> None:
    d, _text, lock = seeds.plans["emergency-revocation"]
    doc = json.loads(lock)
    doc["operations"][0]["entries"] = "@deep@"
    text = json.dumps(doc).replace('"@deep@"', "[" * depth + "]" * depth)
    (d / "case.lock.json").write_text(text)
    code, out, err = seeds.show(d / "case.lock.json")
    _assert_answer(code, out, err, str(d / "case.lock.json"))
    assert code == 2
    if depth > 100:
        assert "nested deeper than 100 levels" in err


def test_json_reader_bounds_depth_and_integers() -> None:
    from writroot.errors import BadInput
    from writroot.jsonio import loads_strict

    assert loads_strict('{"a": "[[[[' + "[" * 500 + '"}', "x") == {"a": "[[[[" + "[" * 500}
    for text, expect in (("[" * 101 + "]" * 101, "nested deeper than 100"),
                         ('{"a": ' + "9" * 4301 + "}", "an integer of 4301 characters"),
                         ('{"' + "k" * 5000 + '": 1, "' + "k" * 5000 + '": 2}',
                          "duplicate key 'kkkk")):
        with pytest.raises(BadInput) as info:
            loads_strict(text, "doc.json")
        assert expect in str(info.value) and len(str(info.value)) < 200


def test_error_lines_are_capped_and_display_safe(seeds: Seeds, tmp_path: Path) -> None:
    """The backstop: whatever an error carries, the line a user sees is printable and short."""
    bad = tmp_path / ("\x1b[2J" + "n" * 200 + ".yaml")
    bad.write_text("plan: 1\n")
    code, _out, err = seeds.lock(bad)
    line = err.rstrip("\n")
    assert code == 2 and "\n" not in line
    assert line.isprintable() and "\\x1b" in line and len(line) < 800


def test_seeds_are_the_shipped_plans() -> None:
    assert set(SEEDS) <= {p.stem for p in CEREMONIES.glob("*.yaml")}


def test_a_long_member_added_to_a_lock_is_named_short(seeds: Seeds) -> None:
    d, _text, lock = seeds.plans["genesis"]
    doc = json.loads(lock)
    doc["operations"][0]["x" * 100_000] = 1
    (d / "case.lock.json").write_text(json.dumps(doc))
    code, out, err = seeds.show(d / "case.lock.json")
    _assert_answer(code, out, err, str(d / "case.lock.json"))
    assert code == 1 and "[plan-relock]" in err and len(err) < 400, err
