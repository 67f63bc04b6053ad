"""A verification report as one self-contained, printable HTML file.

The trust tree is inline SVG: fleet root and its rotation chain, regions with their versions
and enclaves (impact level), federation keys with their pairings and CDS routes, what each
key signed, every statement's validity as a bar on one time axis with the reference time
marked, each node's state and expiry beside it, revoked things struck through in place (a
revoked item not in the set under the list that revokes it). Below it the same nodes as a
table (validity, state, full keyid and serial, and for a revoked one `revoked_at`, reason and
list), every finding (the rule it enforces, the artifact, the check name), the custodians of
each roster (names, M of N) and the ceremonies with their approvers (from the artifacts and
from the binder). No script, no network.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from html import escape as _html_escape

from writroot.crypto.keys import PublicKey
from writroot.display import inert
from writroot.jsonio import format_time
from writroot.verify.report import ArtifactResult, Report


def escape(text: str) -> str:
    """HTML-escaped, with controls and bidi overrides shown, not obeyed (they reorder text
    in a browser as in a terminal)."""
    return _html_escape(inert(text))


#: The rule each check enforces, in one line (docs/format.md §6 has the full list).
RULES: dict[str, str] = {
    "well-formed": "every artifact parses strictly under its payloadType",
    "payload-type": "payloadType matches the statement type",
    "anchor-pinned": "trust starts at the pinned fleet-root fingerprint only",
    "conflict-anchor": "the anchor has one statement of itself",
    "rotation-chain": "each fleet root follows the one before it, from the pinned root",
    "conflict-rotation": "one rotation per fleet-root version (no forks)",
    "rotation-version": "fleet-root versions go up by one",
    "rotation-issuer": "a rotation is signed by the root it replaces and the new one",
    "rotation-chain-length": "the rotation chain is bounded",
    "signature-present": "the issuer's signature is there",
    "signature-valid": "the signature verifies under the issuer's key",
    "signature-independent": "a second, independent implementation agrees",
    "engine-error": "a signature engine that fails is reported, not trusted",
    "validity-window": "valid at the reference time",
    "validity-nested": "what a key signs expires before the key does",
    "issuer-known": "the issuer was certified under the anchor",
    "issuer-authorised": "the issuer's role may sign this type",
    "issuer-role": "the issuer key holds the role it claims",
    "issuer-self-signed": "a fleet-root statement is signed by its own key",
    "issuer-superseded": "a key signs only while in office",
    "issuer-valid-when-signed": "a regional root signs only inside its validity",
    "region-matches": "a region signs only for itself",
    "enclave-assigned": "a region signs only for enclaves its root assigns it",
    "impact-level": "IL4 and IL5 never pair without a registered CDS route",
    "cds-route": "a CDS route is registered in the fleet policy",
    "conflict-regional-root": "one regional root per region and version",
    "conflict-enclave-assigned": "an enclave belongs to one region",
    "conflict-impact-level": "an enclave has one impact level",
    "conflict-enclave-bundle": "one bundle per trust domain and spiffe_sequence",
    "spiffe-sequence": "spiffe_sequence only increases",
    "regional-version": "regional-root versions only increase",
    "quorum-proof": "M custodians of the roster in force approved exactly this",
    "approval-window": "issued inside its approvals' common window",
    "approval-lifetime": "approvals live no longer than the policy allows",
    "approval-plan": "an approval names one ceremony and plan",
    "approver-rostered": "an approver is a custodian of the roster in force",
    "enrolment-rostered": "an enrolled custodian is on a certified roster",
    "proof-of-possession": "a request or enrolment is signed by the key it names",
    "request-region": "a key is certified for the region that requested it",
    "roster-matches": "a rotation carries the roster in force",
    "roster-version": "roster versions go up by one",
    "policy-algorithm": "keys use the algorithms the fleet policy allows",
    "policy-validity": "regional roots live no longer than the policy allows",
    "not-revoked": "nothing revoked is trusted",
    "revocation-sequence": "revocation-list sequences only increase",
    "revocation-cumulative": "a revocation is never withdrawn",
    "revocation-list": "--revocations takes revocation lists only",
    "serial-unique": "serials are unique",
    "fleet-matches": "every statement is for the anchor's fleet",
    "overlay-baseline": "an overlay tailors a verified, signed baseline",
    "subject-digest": "a subject file has the signed digest",
    "subject-unmatched": "every subject file given is named by a signed statement",
    "transcript-chain": "a transcript's hash chain is unbroken",
    "record-seals": "the signed ceremony record seals the transcript",
    "plan-matches-record": "the locked plan is the one the record names",
    "ceremony-complete": "a ceremony carries plan, transcript and record",
    "oscal-source": "published OSCAL sources are the files the plan pinned",
    "transfer-manifest": "a transfer bundle matches its recorded manifest and words",
    "transfer-contents": "what was extracted from a bundle is what it holds",
}

_ROW = 22
_CHAR_W = 7.6  # px per character of 12px monospace, with room to spare
_BAR_W = 420
_UNTIL_W = 220
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#111;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
table{border-collapse:collapse;width:100%;margin:8px 0}
td,th{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top;font-size:12px}
th{background:#eee}.ok{color:#060}.bad{color:#a00;font-weight:bold}.dim{color:#666}
code{font:12px monospace;word-break:break-all}
svg text{font:12px monospace;white-space:pre}
@media print{body{margin:0}svg{max-width:100%}}
"""
_COLOURS = {"fleet-root": "#1f4e9a", "regional-root": "#2b7a3d", "enclave": "#7a5c00",
            "federation-key": "#8a2b7a", "other": "#555"}


@dataclass(frozen=True)
class Revoked:
    target: str  # "keyid:<hex>" or "serial:<serial>"
    revoked_at: datetime
    reason: str
    sequence: int
    list_name: str

    def text(self) -> str:
        return (f"{self.target} revoked_at {format_time(self.revoked_at)} ({self.reason}) by "
                f"revocation list seq {self.sequence} ({self.list_name})")


@dataclass
class Node:
    label: str
    kind: str
    keyid: str | None = None
    result: ArtifactResult | None = None
    start: datetime | None = None
    end: datetime | None = None
    revoked: Revoked | None = None
    superseded: bool = False
    children: list[Node] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result is None or self.result.ok

    def state(self, at: datetime) -> str:
        """What the node is at the reference time, in words."""
        if self.revoked is not None and self.revoked.revoked_at <= at:
            return "REVOKED"
        if self.result is not None and not self.result.ok:
            return "FAILED"
        if self.end is not None and at > self.end:
            return "expired"
        if self.start is not None and at < self.start:
            return "not yet valid"
        if self.superseded:
            return "superseded"
        return "valid" if self.start is not None else ""


def _revoked(report: Report) -> dict[str, Revoked]:
    """Every entry of a verified revocation list, by target (the earliest revocation)."""
    out: dict[str, Revoked] = {}
    for r in report.results:
        st = r.statement
        if st is None or st.type != "revocation-list" or not r.ok:
            continue
        for e in st.subject["entries"]:
            target = f"keyid:{e['keyid']}" if "keyid" in e else f"serial:{e['serial']}"
            hit = Revoked(target, e["revoked_at"], str(e["reason"]), st.subject["sequence"],
                          r.name.rsplit("/", 1)[-1])
            if target not in out or hit.revoked_at < out[target].revoked_at:
                out[target] = hit
    return out


def _label(r: ArtifactResult) -> tuple[str, str, str | None]:
    """(label, kind, keyid of the key it certifies) of a statement's node."""
    st = r.statement
    assert st is not None
    sub = st.subject
    key = sub.get("key")
    keyid: str | None = key.keyid if isinstance(key, PublicKey) else None
    alg = key.algorithm.name if isinstance(key, PublicKey) else ""
    short = keyid[:16] if keyid else ""
    if st.type in ("fleet-root", "fleet-rotation"):
        return f"fleet root v{sub['version']} {alg} {short}", "fleet-root", keyid
    if st.type == "regional-root":
        return (f"regional root {sub['region']} v{sub['version']} {alg} {short}",
                "regional-root", keyid)
    if st.type == "enclave-bundle":
        return (f"enclave bundle {sub['trust_domain']} ({sub['impact_level']}) "
                f"seq {sub['spiffe_sequence']}", "enclave", None)
    if st.type == "federation-key":
        a, b = sub["pairing"]
        route = f" via CDS {sub['cds_route']}" if sub.get("cds_route") else ""
        return (f"federation key {a['trust_domain']} ({a['impact_level']}) <-> "
                f"{b['trust_domain']} ({b['impact_level']}){route} {short}",
                "federation-key", keyid)
    if st.type == "revocation-list":
        return f"revocation list seq {sub['sequence']}", "other", None
    if st.type == "roster":
        return f"roster v{sub['roster']['version']}", "other", None
    if st.type in ("oscal-baseline", "oscal-overlay"):
        return f"{st.type} {sub['name']}", "other", None
    if st.type == "release-provenance":
        return f"release provenance ({len(sub['artifacts'])} artifacts)", "other", None
    return f"{st.type} {st.serial}", "other", None


def _slot(r: ArtifactResult) -> tuple[str, str, int] | None:
    """(type, what, version) for the statements a newer one supersedes."""
    st = r.statement
    assert st is not None
    sub = st.subject
    if st.type in ("fleet-root", "fleet-rotation"):
        return "fleet-root", st.fleet, int(sub["version"])
    if st.type == "regional-root":
        return st.type, str(sub["region"]), int(sub["version"])
    if st.type == "enclave-bundle":
        return st.type, str(sub["trust_domain"]), int(sub["spiffe_sequence"])
    if st.type == "revocation-list":
        return st.type, "", int(sub["sequence"])
    return None


def tree(report: Report) -> list[Node]:
    """Roots of the trust tree: each statement hangs under the node of the key that signed
    it; a regional root lists its enclaves; revoked and superseded statements are marked in
    place, and a revoked item that is not in the set hangs under the list that revokes it."""
    revoked = _revoked(report)
    by_key: dict[str, Node] = {}
    roots: list[Node] = []
    placed: list[tuple[Node, str]] = []
    skip = ("approval", "enrolment", "key-request", "ceremony-record")
    results = [r for r in report.results if r.statement is not None
               and r.statement.type not in skip]
    results.sort(key=lambda r: (r.statement.issued_at, r.name) if r.statement else (0, ""))
    newest: dict[tuple[str, str], int] = {}
    for r in results:
        slot = _slot(r) if r.ok else None
        if slot is not None:
            newest[slot[:2]] = max(newest.get(slot[:2], 0), slot[2])
    lists: dict[int, Node] = {}
    for r in results:
        st = r.statement
        assert st is not None
        label, kind, keyid = _label(r)
        node = Node(label, kind, keyid, r, st.not_before, st.not_after)
        node.revoked = revoked.get(f"serial:{st.serial}") or (
            revoked.get(f"keyid:{keyid}") if keyid else None)
        slot = _slot(r)
        node.superseded = slot is not None and slot[2] < newest.get(slot[:2], 0)
        if st.type == "revocation-list":
            lists.setdefault(int(st.subject["sequence"]), node)
        if st.type == "regional-root":
            for e in st.subject["enclaves"]:
                node.children.append(Node(f"enclave {e['trust_domain']} ({e['impact_level']}) "
                                          f"may sign {', '.join(e['may_sign'])}", "enclave"))
        if keyid is not None and keyid not in by_key:
            by_key[keyid] = node
        parent = st.subject["previous"].keyid if st.type == "fleet-rotation" \
            else st.issuer_keyid
        placed.append((node, parent))
    for node, parent in placed:
        holder = by_key.get(parent)
        if holder is not None and holder is not node:
            holder.children.append(node)
        else:
            roots.append(node)
    shown = {n.revoked.target for n, _ in placed if n.revoked is not None}
    for target, hit in sorted(revoked.items()):
        if target in shown:
            continue
        absent = Node(f"revoked {hit.target.split(':', 1)[0]}, not in this set", "other",
                      target.removeprefix("keyid:") if target.startswith("keyid:") else None,
                      revoked=hit)
        holder = lists.get(hit.sequence)
        (holder.children if holder is not None else roots).append(absent)
    return roots


def _flatten(nodes: list[Node], depth: int = 0) -> list[tuple[int, Node]]:
    out: list[tuple[int, Node]] = []
    for n in nodes:
        out.append((depth, n))
        out += _flatten(n.children, depth + 1)
    return out


def _indent(depth: int) -> int:
    return 8 + depth * 18


def svg(report: Report) -> str:
    rows = _flatten(tree(report))
    times = [t for _, n in rows for t in (n.start, n.end) if t is not None] + [report.at]
    lo, hi = min(times), max(times)
    span = max((hi - lo).total_seconds(), 1.0)
    # the label column is as wide as the widest label, so no label runs into its bar
    label_w = max([_indent(d) + len(n.label + " ✗") * _CHAR_W for d, n in rows] + [200.0])
    label_w = float(int(label_w) + 16)

    def x(t: datetime) -> float:
        return label_w + 10 + (t - lo).total_seconds() / span * _BAR_W

    height = (len(rows) + 3) * _ROW
    width = int(label_w + _BAR_W + 20 + _UNTIL_W)
    until_x = label_w + _BAR_W + 20
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" id="trust-tree" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           'aria-label="trust tree">',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fbfbf8"/>']
    ref = x(report.at)
    out.append(f'<text x="{label_w + 10:.1f}" y="14">{escape(format_time(lo))[:10]}</text>'
               f'<text x="{label_w + _BAR_W - 80:.1f}" y="14">{escape(format_time(hi))[:10]}'
               f'</text><text x="{until_x:.1f}" y="14">state, until</text>')
    for i, (depth, n) in enumerate(rows):
        y = (i + 1) * _ROW + 10
        indent = _indent(depth)
        colour = _COLOURS.get(n.kind, _COLOURS["other"])
        if depth:
            out.append(f'<line x1="{indent - 10}" y1="{y - _ROW + 6}" x2="{indent - 10}" '
                       f'y2="{y - 4}" stroke="#999"/><line x1="{indent - 10}" y1="{y - 4}" '
                       f'x2="{indent - 2}" y2="{y - 4}" stroke="#999"/>')
        mark = "" if n.ok else " ✗"
        attrs = f' data-keyid="{n.keyid}"' if n.keyid else ""
        if n.result is not None:
            attrs += f' data-artifact="{escape(n.result.name)}"'
        state = n.state(report.at)
        attrs += f' data-state="{escape(state)}"'
        deco = ' text-decoration="line-through"' if state == "REVOKED" else ""
        fill = colour if n.ok else "#a00"
        out.append(f'<g class="node {n.kind}"{attrs}><text class="label" x="{indent}" '
                   f'y="{y}" fill="{fill}"{deco}>{escape(n.label + mark)}</text>')
        if n.start is not None and n.end is not None:
            x0, x1 = x(n.start), x(n.end)
            out.append(f'<rect class="bar" x="{x0:.1f}" y="{y - 11}" '
                       f'width="{max(x1 - x0, 2):.1f}" height="12" fill="{colour}" '
                       f'opacity="{0.35 if state in ("REVOKED", "superseded") else 0.8}"/>')
            if state == "REVOKED":
                out.append(f'<line x1="{x0:.1f}" y1="{y - 5}" x2="{x1:.1f}" y2="{y - 5}" '
                           'stroke="#a00" stroke-width="2"/>')
        until = f"{state}, {format_time(n.end)[:10]}" if n.end is not None else state
        if state == "REVOKED" and n.revoked is not None:
            until = f"REVOKED {format_time(n.revoked.revoked_at)[:10]}"
        if until:
            out.append(f'<text class="until" x="{until_x:.1f}" y="{y}" '
                       f'fill="{"#a00" if state in ("REVOKED", "FAILED") else "#333"}">'
                       f'{escape(until)}</text>')
        out.append("</g>")
    out.append(f'<line x1="{ref:.1f}" y1="18" x2="{ref:.1f}" y2="{height - _ROW}" '
               'stroke="#d00" stroke-dasharray="4 3"/>'
               f'<text x="{max(ref - 120, label_w):.1f}" y="{height - 6}" fill="#d00">'
               f'reference {escape(format_time(report.at))}</text></svg>')
    return "".join(out)


def _details(report: Report) -> str:
    """The tree again as a table: each node's validity, state and full keyid or serial, and
    for a revoked one when, why and by which list."""
    rows = ["<tr><th>node</th><th>valid from</th><th>valid until</th><th>state</th>"
            "<th>keyid / serial</th><th>revocation</th></tr>"]
    for depth, n in _flatten(tree(report)):
        if n.result is None and n.revoked is None:
            continue  # an enclave a regional root assigns: shown in the tree
        serial = n.result.serial if n.result is not None else None
        ident = "<br>".join(f"<code>{escape(v)}</code>" for v in (
            f"keyid {n.keyid}" if n.keyid else "", f"serial {serial}" if serial else "",
            n.revoked.target if n.revoked is not None and not n.keyid and not serial else "")
            if v)
        state = n.state(report.at)
        rows.append(
            f'<tr class="node-row" data-state="{escape(state)}"><td style="padding-left:'
            f'{6 + depth * 14}px">{escape(n.label)}</td>'
            f"<td>{format_time(n.start) if n.start else '?'}</td>"
            f"<td>{format_time(n.end) if n.end else '?'}</td>"
            f"<td class={'bad' if state in ('REVOKED', 'FAILED') else 'ok'}>"
            f"{escape(state)}</td><td>{ident}</td>"
            f"<td>{escape(n.revoked.text()) if n.revoked else ''}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _approvers(report: Report) -> dict[str, tuple[set[str], set[str]]]:
    """ceremony id -> (custodians who approved it, types signed): from the approvals the
    artifacts carry and from the verified approvals of the binder."""
    out: dict[str, tuple[set[str], set[str]]] = {}
    for r in report.results:
        st = r.statement
        if st is None or st.type in ("enrolment", "key-request"):
            continue
        if st.type == "approval":
            if r.ok:
                out.setdefault(str(st.subject["ceremony"]), (set(), set()))[0].add(
                    str(st.subject["custodian"]))
            continue
        people, types = out.setdefault(str(st.ceremony["id"]), (set(), set()))
        types.add(st.type)
        for a in st.ceremony.get("approvals") or []:
            try:
                doc = json.loads(base64.b64decode(a["payload"]))
                people.add(str(doc["subject"]["custodian"]))
            except (KeyError, TypeError, ValueError):
                continue
    return out


def _custodians(report: Report) -> str:
    """Each roster a verified fleet root carries: M of N, and each custodian by name."""
    seen: set[int] = set()
    parts = []
    for r in sorted((r for r in report.results if r.ok and r.statement is not None
                     and r.statement.type in ("fleet-root", "fleet-rotation")),
                    key=lambda r: r.statement.subject["roster"]["version"]
                    if r.statement else 0):
        assert r.statement is not None
        roster = r.statement.subject["roster"]
        if roster["version"] in seen:
            continue
        seen.add(roster["version"])
        members = roster["custodians"]
        rows = "".join(f"<tr><td>{escape(c['id'])}</td><td>{escape(c['name'])}</td>"
                       f"<td>{escape(c['key'].algorithm.name)}</td>"
                       f"<td><code>{c['key'].keyid}</code></td></tr>" for c in members)
        parts.append(f"<p>Roster v{roster['version']} (fleet root v"
                     f"{r.statement.subject['version']}): quorum <b>{roster['threshold']} of "
                     f"{len(members)}</b></p><table><tr><th>id</th><th>name</th>"
                     f"<th>algorithm</th><th>keyid</th></tr>{rows}</table>")
    return "".join(parts) or "<p>no verified fleet-root statement carries a roster</p>"


def render(report: Report) -> str:
    verdict = ('<span class="ok">VERIFIED</span>' if report.ok
               else '<span class="bad">FAILED</span>')
    head = [f"<p>Result: {verdict} &middot; reference time <code>{format_time(report.at)}"
            f"</code> &middot; anchor <code>{report.anchor}</code></p>"]
    if report.fleet_root:
        head.append(f"<p>Fleet root in force: <code>{report.fleet_root}</code> (version "
                    f"{report.fleet_version})</p>")
    if report.package:
        head.append(f"<p>Audit package <code>{escape(report.package['path'])}</code>, manifest "
                    f"<code>{report.package['manifest_sha256']}</code>, read aloud: "
                    f"<b>{escape(report.package['words'])}</b></p>")
    findings = ["<tr><th>artifact</th><th>check</th><th>rule it enforces</th><th>finding</th>"
                "</tr>"] + [
        f"<tr class=finding><td><code>{escape(f.artifact)}</code></td><td>{escape(f.check)}"
        f"</td><td>{escape(RULES.get(f.check, ''))}</td><td>{escape(f.message)}</td></tr>"
        for f in report.findings]
    if not report.findings:
        findings.append("<tr><td colspan=4>none: every check holds</td></tr>")
    artifacts = ["<tr><th>artifact</th><th>type</th><th>result</th><th>checked by</th></tr>"] + [
        f"<tr><td><code>{escape(r.name)}</code></td><td>{escape(r.type or '?')}</td>"
        f"<td class={'ok' if r.ok else 'bad'}>{'OK' if r.ok else 'FAIL'}</td>"
        f"<td>{escape(', '.join(sorted(r.checked_by)))}</td></tr>" for r in report.results]
    ceremonies = ["<tr><th>ceremony</th><th>approvers</th><th>signed</th></tr>"] + [
        f"<tr class=ceremony><td>{escape(c)}</td><td>{escape(', '.join(sorted(p)) or '-')}"
        f"</td><td>{escape(', '.join(sorted(t)))}</td></tr>"
        for c, (p, t) in sorted(_approvers(report).items())]
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; "
            "style-src 'unsafe-inline'\"><title>writroot verification report</title>"
            f"<style>{_STYLE}</style></head><body><h1>writroot verification report</h1>"
            + "".join(head) + "<h2>Trust tree</h2>" + svg(report)
            + "<h2>Keys and statements: validity, state, revocation</h2>" + _details(report)
            + f"<h2>Findings ({len(report.findings)})</h2><table>" + "".join(findings)
            + "</table><h2>Custodians</h2>" + _custodians(report)
            + "<h2>Ceremonies</h2><table>" + "".join(ceremonies)
            + "</table><h2>Artifacts</h2><table>" + "".join(artifacts)
            + "</table></body></html>\n")


def render_transcript(events: list[dict[str, object]], head: str, record_ok: bool,
                      report: Report) -> str:
    """`audit --html`: the transcript as a table, its seal, and the trust tree of the
    artifacts given with it."""
    verdict = ('<span class="ok">record verified; chain intact</span>' if record_ok
               else '<span class="bad">record NOT VERIFIED</span>')
    rows = ["<tr><th>#</th><th>time</th><th>event</th><th>facts</th></tr>"] + [
        f"<tr><td>{escape(str(e['seq']))}</td><td>{escape(str(e['time']))}</td>"
        f"<td>{escape(str(e['event']))}</td><td><code>"
        f"{escape(json.dumps(e['facts'], sort_keys=True))}</code></td></tr>" for e in events]
    findings = "".join(
        f"<tr class=finding><td><code>{escape(f.artifact)}</code></td><td>{escape(f.check)}"
        f"</td><td>{escape(RULES.get(f.check, ''))}</td><td>{escape(f.message)}</td></tr>"
        for f in report.findings)
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; "
            "style-src 'unsafe-inline'\"><title>writroot ceremony transcript</title>"
            f"<style>{_STYLE}</style></head><body><h1>Ceremony transcript</h1>"
            f"<p>{verdict} &middot; {len(events)} entries &middot; chain head <code>{head}"
            f"</code> &middot; checked at <code>{format_time(report.at)}</code></p>"
            "<h2>Trust tree</h2>" + svg(report)
            + (f"<h2>Findings</h2><table><tr><th>artifact</th><th>check</th><th>rule</th>"
               f"<th>finding</th></tr>{findings}</table>" if findings else "")
            + "<h2>Events</h2><table>" + "".join(rows) + "</table></body></html>\n")
