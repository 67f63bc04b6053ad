"""The review of a locked plan: what custodians read before they approve and the operator
reads before the HSM signs. One function gives it as data (`review`); `render` turns that data
into the text `ceremony plan`, `show`, `approve` and `run` all print, and `--json` prints the
data itself, so every screen shows the same thing.

Every signing key and every input is shown as hex groups and PGP words; a transfer bundle
by its manifest digest (the one `bundle inspect` and `region keygen` show); validity windows
as dates for a signature made at the review's reference time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from writroot.crypto.fingerprint import hex_groups, pgp_words
from writroot.jsonio import format_time
from writroot.rules.covers import OP_TYPE

#: Fields of an operation that are shown elsewhere (title, validity) or not at all.
_HIDDEN = {"op", "validity_days", "public_key"}


def fingerprint(hexdigest: str) -> dict[str, str]:
    """A digest or keyid in the three forms people and scripts use."""
    return {"hex": hexdigest, "groups": hex_groups(hexdigest),
            "words": pgp_words(bytes.fromhex(hexdigest))}


def _is_pin(value: Any) -> bool:
    return isinstance(value, dict) and {"path", "sha256", "size"} <= set(value)


def input_of(pin: dict[str, Any]) -> dict[str, Any]:
    """An input file as pinned: path, size and SHA-256; a transfer bundle by its manifest."""
    out: dict[str, Any] = {"path": pin["path"], "size": pin["size"],
                           "sha256": fingerprint(pin["sha256"])}
    if "manifest_sha256" in pin:
        from writroot.transfer import human_digest

        out["manifest_sha256"] = fingerprint(pin["manifest_sha256"])
        out["read_aloud"] = human_digest(pin["manifest_sha256"])
    return out


def _title(op: dict[str, Any]) -> str:
    kind = op["op"]
    log = (f"; and the fleet's ML-DSA-44 log key, label {op['log_key_label']}"
           if "log_key_label" in op else "")
    if kind == "generate-fleet-root":
        return (f"Generate a new {op['algorithm']} fleet root in the HSM, label "
                f"{op['label']}{log}")
    if kind == "sign-fleet-root":
        return "Sign the fleet-root statement: the anchor's key, policy and roster"
    if kind == "sign-regional-root":
        return f"Certify the {op['region']} regional root, version {op['version']}"
    if kind == "sign-roster":
        roster = op["roster"]["roster"]
        return (f"Install custodian roster version {roster['version']}: "
                f"{roster['threshold']} of {len(roster['custodians'])}")
    if kind == "rotate-fleet-root":
        return (f"Generate fleet root version {op['version']} ({op['algorithm']}, label "
                f"{op['label']}){log}; the old and the new root sign the rotation")
    if kind == "sign-witness-policy":
        return (f"Sign witness policy version {op['version']}: {op['quorum']} of "
                f"{len(op['witnesses'])} witnesses cosign each checkpoint, logging "
                f"{op['logging']}{log}")
    if kind == "sign-revocation-list":
        return (f"Sign revocation list sequence {op['sequence']}: "
                f"{len(op['entries'])} entries")
    if kind == "sign-enclave-bundle":
        return (f"Sign the SPIFFE bundle of {op['trust_domain']} ({op['impact_level']}) "
                f"for region {op['region']}")
    if kind == "sign-federation-key":
        pair = " <-> ".join(f"{p['trust_domain']} ({p['impact_level']})" for p in op["pairing"])
        route = f" over CDS route {op['cds_route']}" if "cds_route" in op else ""
        return f"Certify a federation-policy key for {pair}{route}"
    if kind == "sign-oscal-baseline":
        return "Sign an OSCAL baseline component definition"
    if kind == "sign-oscal-overlay":
        return f"Sign the {op['region']} OSCAL tailoring overlay"
    if kind == "sign-release-provenance":
        return f"Sign release provenance for {len(op['artifacts'])} artifacts"
    if kind == "retire-key":
        return f"Destroy key {hex_groups(op['keyid'])[:19]}… on the token ({op['reason']})"
    return str(kind)


def _text(value: Any) -> str:
    """A plain-words rendering of a plan value: lists one per line, records as k=v."""
    if isinstance(value, list):
        if not value:
            return "(none)"
        joiner = "\n" if any(isinstance(v, dict) for v in value) else ", "
        return joiner.join(_text(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k} {_text(v)}" for k, v in sorted(value.items()))
    return str(value)


def _walk_inputs(value: Any, where: str, out: list[dict[str, Any]]) -> None:
    if _is_pin(value):
        out.append({"field": where, **input_of(value)})
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            _walk_inputs(v, f"{where}[{i}]", out)
    elif isinstance(value, dict):
        for k, v in sorted(value.items()):
            _walk_inputs(v, f"{where}.{k}" if where else k, out)


def _bundle(op: dict[str, Any]) -> dict[str, Any]:
    """An enclave bundle as custodians check it: domain, level, sequence old -> new, the
    fingerprint of each CA certificate and each JWT key id (pinned in the lock)."""
    bundle = op["bundle"]
    previous = op.get("previous")
    return {"trust_domain": op["trust_domain"], "impact_level": op["impact_level"],
            "region": op["region"],
            "spiffe_sequence": {"old": previous["spiffe_sequence"] if previous else None,
                                "new": bundle["spiffe_sequence"]},
            "x509_authorities": [fingerprint(h) for h in bundle.get("x509_authorities", [])],
            "jwt_kids": list(bundle.get("jwt_kids", []))}


def _revokes(op: dict[str, Any]) -> list[dict[str, Any]]:
    """Each revocation target with what it is: from the statement it was found in (the
    artifact, or a file under known:), else kept from the previous list."""
    about: dict[str, dict[str, Any]] = {}
    for record in [*op.get("known", []), *op.get("targets", [])]:
        if "keyid" in record:
            about.setdefault(f"keyid:{record['keyid']}", {**record, "from": "known"})
        about.setdefault(f"serial:{record['serial']}", {**record, "from": "known"})
    for record in op.get("targets", []):
        about[record["target"]] = {**record, "from": "artifact"}
    out = []
    for entry in op["entries"]:
        target = f"keyid:{entry['keyid']}" if "keyid" in entry else f"serial:{entry['serial']}"
        record = about.get(target, {})
        item: dict[str, Any] = {"revoke": "key" if "keyid" in entry else "statement",
                                "reason": entry["reason"],
                                "from": record.get("from", "previous list")}
        if "revoked_at" in entry:
            item["revoked_at"] = entry["revoked_at"]
        for name in ("type", "name", "version", "serial", "path"):
            if name in record:
                item[name] = record[name]
        if "serial" in entry:
            item["serial"] = entry["serial"]
        if "keyid" in entry:
            item["keyid"] = fingerprint(entry["keyid"])
        elif "keyid" in record:  # a statement revoked, not its key: shown, not revoked
            item["certifies"] = fingerprint(record["keyid"])
        out.append(item)
    return out


def _enclaves_diff(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    """The enclave list of a regional rotation against the root it supersedes."""
    before = {e["trust_domain"]: e for e in old}
    after = {e["trust_domain"]: e for e in new}
    return {"added": [after[d] for d in sorted(set(after) - set(before))],
            "removed": [before[d] for d in sorted(set(before) - set(after))],
            "changed": [{"trust_domain": d, "old": before[d], "new": after[d]}
                        for d in sorted(set(before) & set(after)) if before[d] != after[d]]}


def _signed(plan_doc: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    """What the operation signs that custodians must check, beyond its plain fields."""
    kind = op["op"]
    if kind == "sign-enclave-bundle":
        return {"bundle": _bundle(op)}
    if kind == "sign-revocation-list":
        previous = op.get("previous")
        return {"revokes": _revokes(op),
                "sequence": {"old": previous["sequence"] if previous else None,
                             "new": op["sequence"]}}
    if kind == "rotate-fleet-root" and "fleet_root" in plan_doc:
        fr = plan_doc["fleet_root"]
        return {"supersedes": {"version": fr["version"], "keyid": fingerprint(fr["keyid"])}}
    if kind == "sign-regional-root" and "previous" in op:
        prev = op["previous"]
        return {"supersedes": {"version": prev["version"], "keyid": fingerprint(prev["keyid"])},
                "enclaves_diff": _enclaves_diff(prev["enclaves"], op["enclaves"])}
    if kind == "sign-regional-root" and op.get("version", 1) > 1:
        return {"supersedes": {"version": op["version"] - 1}}
    return {}


#: Fields each kind of operation shows in its own rows (`_signed`), not as plain fields.
_SHOWN_ELSEWHERE = {"sign-revocation-list": {"entries", "known", "targets", "sequence"},
                    "sign-enclave-bundle": {"trust_domain", "impact_level"}}


def _operation(plan_doc: dict[str, Any], op: dict[str, Any], index: int,
               at: datetime) -> dict[str, Any]:
    fields: list[list[str]] = []
    keys: list[dict[str, Any]] = []
    inputs: list[dict[str, Any]] = []
    for name in sorted(op):
        value = op[name]
        if name in _HIDDEN or name in _SHOWN_ELSEWHERE.get(op["op"], ()):
            if name in ("known", "targets"):
                _walk_inputs(value, name, inputs)
            continue
        if isinstance(value, dict) and "keyid" in value and "algorithm" in value:
            keys.append({"field": name, "algorithm": value["algorithm"],
                         "keyid": fingerprint(value["keyid"])})
        if name == "roster" and isinstance(value, dict):
            roster = value["roster"]
            fields.append(["roster", f"version {roster['version']}, {roster['threshold']} of "
                           f"{len(roster['custodians'])}: "
                           + ", ".join(c["id"] for c in roster["custodians"])])
        elif name == "policy":
            pass  # shown in the plan's policy section
        elif name == "keyid":
            keys.append({"field": name, "keyid": fingerprint(str(value))})
        elif not (_is_pin(value) or (isinstance(value, list) and value
                                     and all(_is_pin(v) for v in value))):
            fields.append([name, _text(value)])
        _walk_inputs(value, name, inputs)
    entry: dict[str, Any] = {"index": index, "op": op["op"], "title": _title(op),
                             "fields": fields, "keys": keys, "inputs": inputs,
                             **_signed(plan_doc, op)}
    if op["op"] in OP_TYPE:
        entry["yields"] = OP_TYPE[op["op"]]
        entry["serial"] = f"{plan_doc['ceremony']}.{index}"
    if "validity_days" in op:
        entry["validity"] = {"days": op["validity_days"], "not_before": format_time(at),
                             "not_after": format_time(at + timedelta(days=op["validity_days"]))}
    if "policy" in op and op["op"] == "rotate-fleet-root":
        entry["policy"] = op["policy"]
    return entry


def review(plan: Any, at: datetime) -> dict[str, Any]:
    """The review of a `LockedPlan` (its document and the policy in force), validity dates
    for a signature made at `at`."""
    doc: dict[str, Any] = plan.document
    roster = doc["roster"]
    out: dict[str, Any] = {
        "ceremony": doc["ceremony"], "fleet": doc["fleet"],
        "plan_sha256": fingerprint(plan.sha256), "reviewed_at": format_time(at),
        "signer": ({"generate": True} if doc["signer"] == "generate"
                   else {"generate": False, "keyid": fingerprint(doc["signer"]),
                         "role": "regional-root" if "authority" in doc else "fleet-root"}),
        "roster": {**input_of(roster), "version": roster["roster"]["version"],
                   "threshold": roster["roster"]["threshold"],
                   "custodians": [{"id": c["id"], "name": c["name"],
                                   "algorithm": c["key"]["algorithm"],
                                   "keyid": fingerprint(c["key"]["keyid"])}
                                  for c in roster["roster"]["custodians"]]},
    }
    if "fleet_root" in doc:
        fr = doc["fleet_root"]
        out["fleet_root"] = {**input_of(fr), "keyid": fingerprint(fr["keyid"]),
                             "version": fr["version"],
                             **({"not_after": fr["not_after"]} if "not_after" in fr else {})}
    if "authority" in doc:
        au = doc["authority"]
        out["authority"] = {**input_of(au), "region": au["region"], "not_after": au["not_after"]}
    if "established" in doc:  # what the anchor established: custodians approve it too
        est = doc["established"]
        out["established"] = {
            "anchor": fingerprint(est["anchor"]),
            "fleet_root": {"keyid": fingerprint(est["fleet_root"]["keyid"]),
                           "version": est["fleet_root"]["version"]},
            "roster_version": est["roster_version"],
            "revocation_sequence": est.get("revocation_sequence"),
            **({"authority": {**est["authority"],
                              "keyid": fingerprint(est["authority"]["keyid"])}}
               if "authority" in est else {})}
    if "log" in doc:  # the head of the issuer's log this ceremony extends (approved too)
        out["log"] = {"origin": doc["log"]["origin"], "size": doc["log"]["size"],
                      "root": fingerprint(doc["log"]["root"])}
    policy = plan.policy
    if policy is None:
        policy = next((op["policy"] for op in doc["operations"] if "policy" in op), None)
    out["policy"] = policy
    out["cds_routes"] = list(policy.get("cds_routes", [])) if policy else []
    out["operations"] = [_operation(doc, op, i, at) for i, op in enumerate(doc["operations"])]
    return out


# -- text -------------------------------------------------------------------------------------

def _fp_text(fp: dict[str, str]) -> str:
    return f"{fp['groups']}\n{fp['words']}"


def _input_text(item: dict[str, Any]) -> str:
    lines = [f"{item['path']} ({item['size']} bytes)"]
    if "manifest_sha256" in item:
        lines += ["manifest sha256 " + item["manifest_sha256"]["groups"],
                  item["manifest_sha256"]["words"], f"read aloud: {item['read_aloud']}"]
    else:
        lines += ["sha256 " + item["sha256"]["groups"], item["sha256"]["words"]]
    return "\n".join(lines)


def _table(title: str | None = None) -> _Rows:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from writroot.display import inert

    # a title is markup to rich: given as Text, inert, it is shown as it is
    table = Table(title=Text(inert(title)) if title is not None else None,
                  title_justify="left", show_header=False, box=box.SIMPLE, pad_edge=False,
                  expand=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    return _Rows(table)


class _Rows:
    """A two-column table whose cells are plain text (never markup)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def add_row(self, name: str, value: str) -> None:
        from rich.text import Text

        from writroot.display import inert

        # plan fields, names and titles are inputs: no control or bidi character acts
        self.table.add_row(Text(inert(name, keep_newlines=True)),
                           Text(inert(value, keep_newlines=True)))

    def __rich__(self) -> Any:
        return self.table


def _policy_text(policy: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {_text(v)}" for k, v in sorted(policy.items()) if k != "cds_routes")


def _old_new(pair: dict[str, Any]) -> str:
    if pair["old"] is None:
        return f"{pair['new']} (no previous one named)"
    return f"{pair['old']} -> {pair['new']}"


def _level_rights(e: dict[str, Any]) -> str:
    return f"{e['impact_level']}, may sign {', '.join(e['may_sign'])}"


def _enclave_text(e: dict[str, Any]) -> str:
    return f"{e['trust_domain']} ({_level_rights(e)})"


def _signed_rows(op: dict[str, Any]) -> list[tuple[str, str]]:
    """The rows of `_signed`'s facts: what custodians compare with what they were told."""
    rows: list[tuple[str, str]] = []
    if "bundle" in op:
        b = op["bundle"]
        rows += [("trust domain", b["trust_domain"]), ("impact level", b["impact_level"]),
                 ("spiffe_sequence", _old_new(b["spiffe_sequence"]))]
        for i, fp in enumerate(b["x509_authorities"], 1):
            rows.append((f"CA certificate {i}", "sha256 " + _fp_text(fp)))
        rows.append(("JWT key ids", ", ".join(b["jwt_kids"]) or "(none)"))
    if "sequence" in op and isinstance(op["sequence"], dict):
        rows.append(("sequence", _old_new(op["sequence"])))
    for i, r in enumerate(op.get("revokes", []), 1):
        what = " ".join(str(r[k]) for k in ("type", "name") if k in r)
        lines = [f"the {r['revoke']}" + (f" of {what}" if what else "")
                 + (f", version {r['version']}" if "version" in r else "")]
        if "serial" in r:
            lines.append(f"serial {r['serial']}")
        if "keyid" in r:
            lines.append("keyid " + _fp_text(r["keyid"]))
        if "certifies" in r:
            lines.append("it certifies keyid " + _fp_text(r["certifies"]) + " (not revoked)")
        lines.append(f"reason {r['reason']}" + (f", revoked at {r['revoked_at']}"
                                                 if "revoked_at" in r else ", revoked when "
                                                 "signed"))
        lines.append("found in " + (r["path"] if "path" in r else "the previous list "
                                    "(kept: a target revoked once stays revoked)"))
        rows.append((f"revokes {i}", "\n".join(lines)))
    if "supersedes" in op:
        sup = op["supersedes"]
        rows.append(("supersedes", f"version {sup['version']}"
                     + (f"\nkeyid {_fp_text(sup['keyid'])}" if "keyid" in sup else
                        " (not named in the plan: give previous: to see what changes)")))
    diff = op.get("enclaves_diff")
    if diff is not None:
        lines = ([f"+ {_enclave_text(e)}" for e in diff["added"]]
                 + [f"- {_enclave_text(e)}" for e in diff["removed"]]
                 + [f"~ {c['trust_domain']}: {_level_rights(c['old'])} -> "
                    f"{_level_rights(c['new'])}" for c in diff["changed"]])
        rows.append(("enclaves change", "\n".join(lines) or "none"))
    return rows


def renderables(data: dict[str, Any]) -> list[Any]:
    """Rich renderables for the review: one header table, one table per operation."""
    head = _table(f"Ceremony {data['ceremony']} (fleet {data['fleet']})")
    signer = data["signer"]
    head.add_row("signer", "generated in this ceremony" if signer["generate"]
                 else f"{signer['role']}\n{_fp_text(signer['keyid'])}")
    roster = data["roster"]
    head.add_row("roster", _input_text(roster))
    head.add_row("quorum", f"{roster['threshold']} of {len(roster['custodians'])} "
                 f"(roster version {roster['version']})")
    for c in roster["custodians"]:
        head.add_row(f"  {c['id']}", f"{c['name']}, {c['algorithm']}\n{_fp_text(c['keyid'])}")
    if "fleet_root" in data:
        fr = data["fleet_root"]
        until = f", valid until {fr['not_after']}" if "not_after" in fr else ""
        head.add_row("fleet root", f"version {fr['version']}{until}\n{_fp_text(fr['keyid'])}\n"
                     + _input_text(fr))
    if "authority" in data:
        au = data["authority"]
        head.add_row("authority", f"{au['region']} regional root, valid until "
                     f"{au['not_after']}\n" + _input_text(au))
    if "established" in data:
        est = data["established"]
        seq = est["revocation_sequence"]
        lines = [f"from the pinned anchor {_fp_text(est['anchor'])}",
                 f"fleet root in force: version {est['fleet_root']['version']}",
                 f"roster in force: version {est['roster_version']}",
                 "newest revocation list: " + (f"sequence {seq}" if seq is not None
                                               else "none")]
        if "authority" in est:
            au = est["authority"]
            lines.append(f"signing authority: {au['region']} regional root version "
                         f"{au['version']}")
        head.add_row("established", "\n".join(lines))
    if "log" in data:
        log = data["log"]
        head.add_row("log", f"{log['origin']}, extended from size {log['size']}, root\n"
                     + _fp_text(log["root"]))
    if data["policy"] is not None:
        head.add_row("policy", _policy_text(data["policy"]))
    head.add_row("CDS routes", "\n".join(f"{r['id']}: " + " <-> ".join(r["between"])
                                         for r in data["cds_routes"]) or "(none)")
    out: list[Any] = [head]
    total = len(data["operations"])
    for op in data["operations"]:
        table = _table(f"Operation {op['index'] + 1} of {total}: {op['title']}")
        table.add_row("op", op["op"])
        if "yields" in op:
            table.add_row("yields", f"{op['yields']} statement, serial {op['serial']}")
        for name, value in op["fields"]:
            table.add_row(name, value)
        for name, value in _signed_rows(op):
            table.add_row(name, value)
        if "validity" in op:
            v = op["validity"]
            table.add_row("validity", f"{v['days']} days: {v['not_before']} to "
                          f"{v['not_after']} (if signed at {data['reviewed_at']})")
        for key in op["keys"]:
            alg = f"{key['algorithm']} " if "algorithm" in key else ""
            table.add_row(f"{key['field']} keyid", f"{alg}\n{_fp_text(key['keyid'])}".lstrip())
        for item in op["inputs"]:
            table.add_row(f"input {item['field']}", _input_text(item))
        if "policy" in op:
            table.add_row("new policy", _policy_text(op["policy"]))
        out.append(table)
    digest = _table("Plan digest (read aloud; custodians approve exactly this)")
    digest.add_row("plan digest", data["plan_sha256"]["groups"])
    digest.add_row("PGP words", data["plan_sha256"]["words"])
    out.append(digest)
    return out


def render(data: dict[str, Any], console: Any) -> None:
    for item in renderables(data):
        console.print(item)
