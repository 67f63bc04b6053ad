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


def _operation(plan_doc: dict[str, Any], op: dict[str, Any], index: int,
               at: datetime) -> dict[str, Any]:
    fields: list[list[str]] = []
    keys: list[dict[str, Any]] = []
    inputs: list[dict[str, Any]] = []
    for name in sorted(op):
        value = op[name]
        if name in _HIDDEN:
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
                             "fields": fields, "keys": keys, "inputs": inputs}
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

    table = Table(title=title, title_justify="left", show_header=False, box=box.SIMPLE,
                  pad_edge=False, expand=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    return _Rows(table)


class _Rows:
    """A two-column table whose cells are plain text (never markup)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def add_row(self, name: str, value: str) -> None:
        from rich.text import Text

        self.table.add_row(Text(name), Text(value))

    def __rich__(self) -> Any:
        return self.table


def _policy_text(policy: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {_text(v)}" for k, v in sorted(policy.items()) if k != "cds_routes")


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
