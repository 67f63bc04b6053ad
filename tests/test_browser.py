"""The HTML report in a real browser: Debian's Chromium, headless, loads the demo's audit
report; the DOM it dumps holds a node for every key of the trust tree, and a screenshot of
it is not blank. In CI (CI=true) a missing Chromium fails loudly; elsewhere it is skipped
with the reason (`make setup` installs it like softhsm2)."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars")


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        reason = "Debian's chromium is not installed (make setup installs it; apt-get install " \
                 "chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI: {reason}")
        pytest.skip(reason)
    return exe


def _browse(exe: str, tmp: Path, *args: str, url: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([exe, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args, url],
                          capture_output=True, timeout=120, check=False,
                          env={**os.environ, "HOME": str(tmp)})


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """A tiny PNG reader (8-bit RGB/RGBA, non-interlaced): width, height, and the rows of
    pixels after undoing the scanline filters."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) \
                    & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def distinct_colours(data: bytes) -> int:
    width, _height, rows = png_pixels(data)
    bpp = len(rows[0]) // width
    return len({row[i:i + 3] for row in rows for i in range(0, len(row), bpp)})


def test_report_in_a_real_browser(audit_demo: dict[str, Any], tmp_path: Path) -> None:
    exe = _chromium()
    report = Path(audit_demo["audit_report"])
    url = report.resolve().as_uri()
    dom = _browse(exe, tmp_path, "--dump-dom", url=url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout.decode()
    assert "writroot verification report" in text and "VERIFIED" in text
    # a node for every key of the tree: fleet roots, regional roots, federation keys
    proc = run_cli("verify", audit_demo["audit_package"], "--anchor",
                   audit_demo["anchor_fingerprint"], "--json")
    artifacts = json.loads(proc.stdout)["artifacts"]
    from writroot.envelope import Envelope
    from writroot.statements import parse_any

    keyids = set()
    for a in artifacts:
        if a["type"] in ("fleet-root", "fleet-rotation", "regional-root", "federation-key"):
            data = Path(a["artifact"].replace("audit-package.tar/", "auditor/audit-package/")
                        ).read_bytes()
            env = Envelope.parse(data, a["artifact"])
            keyids.add(parse_any(env.payload_type, env.payload, "p").subject["key"].keyid)
    assert len(keyids) >= 10
    nodes = set(re.findall(r'<g class="node[^"]*" data-keyid="([0-9a-f]{64})"', text))
    assert keyids <= nodes, keyids - nodes
    shot = tmp_path / "shot.png"
    taken = _browse(exe, tmp_path, "--window-size=900,1200", f"--screenshot={shot}", url=url)
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    assert distinct_colours(shot.read_bytes()) > 8  # text, bars, reference line: not blank


def test_png_reader_tells_blank_from_drawn() -> None:
    """The reader itself, on PNGs built here: one colour, then several."""
    def png(width: int, rows: list[bytes]) -> bytes:
        def chunk(kind: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind + body + \
                struct.pack(">I", zlib.crc32(kind + body))
        raw = b"".join(b"\x00" + r for r in rows)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width,
                                                                  len(rows), 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    blank = png(4, [b"\xff" * 12] * 4)
    drawn = png(4, [bytes([i * 40, 0, 255 - i * 40]) * 4 for i in range(4)])
    assert distinct_colours(blank) == 1 and distinct_colours(drawn) == 4


_MEASURE = """<script>
const boxes = [];
for (const el of document.querySelectorAll('#trust-tree text, #trust-tree rect.bar')) {
  const b = el.getBoundingClientRect();
  boxes.push({tag: el.tagName, text: el.textContent, x: b.left, y: b.top, w: b.width,
              h: b.height});
}
const pre = document.createElement('pre');
pre.id = 'boxes';
pre.textContent = JSON.stringify(boxes);
document.body.appendChild(pre);
</script>"""


def _overlaps(a: dict[str, Any], b: dict[str, Any], slack: float = 0.5) -> bool:
    return (a["x"] + slack < b["x"] + b["w"] and b["x"] + slack < a["x"] + a["w"]
            and a["y"] + slack < b["y"] + b["h"] and b["y"] + slack < a["y"] + a["h"])


def test_report_answers_an_auditor_on_the_page(audit_demo: dict[str, Any],
                                               tmp_path: Path) -> None:
    """Each node's state and expiry, superseded and revoked in place (full keyid,
    revoked_at, reason, list), approvers of every ceremony, custodians by name with the
    threshold; and in the rendered page no text overlaps another text or a bar."""
    import html

    from writroot.envelope import Envelope
    from writroot.statements import parse_any

    exe = _chromium()
    report = Path(audit_demo["audit_report"])
    dom = _browse(exe, tmp_path, "--dump-dom", url=report.resolve().as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = html.unescape(re.sub(r"<[^>]+>", " ", dom.stdout.decode()))
    text = " ".join(text.split())

    def statement(kind: str) -> Any:
        path = next(Path(a["path"]) for a in audit_demo["artifacts"] if a["type"] == kind)
        env = Envelope.parse(path.read_bytes(), str(path))
        return parse_any(env.payload_type, env.payload, str(path))

    [entry] = statement("revocation-list").subject["entries"]
    assert f"keyid:{entry['keyid']} revoked_at" in text
    assert f"({entry['reason']}) by revocation list seq 1" in text
    assert "REVOKED" in text and "superseded" in text and "valid until" in text
    states = re.findall(r'data-state="([^"]*)"', dom.stdout.decode())
    assert {"valid", "superseded", "REVOKED"} <= set(states)
    roster = statement("fleet-root").subject["roster"]
    n = len(roster["custodians"])
    assert f"quorum {roster['threshold']} of {n}" in text
    assert all(c["name"] in text for c in roster["custodians"])
    ceremonies = re.findall(r"<tr class=\"?ceremony\"?>(.*?)</tr>", dom.stdout.decode())
    assert len(ceremonies) == len(audit_demo["ceremonies"])
    assert not [c for c in ceremonies if "<td>-</td>" in c], ceremonies
    # boxes as the browser laid them out: measured by a script added to a copy of the page
    page = report.read_text()
    page = re.sub(r"<meta http-equiv=Content-Security-Policy[^>]*>", "", page)
    measured = tmp_path / "measured.html"
    measured.write_text(page.replace("</body>", _MEASURE + "</body>"))
    dom = _browse(exe, tmp_path, "--dump-dom", url=measured.resolve().as_uri())
    found = re.search(r'<pre id="boxes">(.*?)</pre>', dom.stdout.decode(), re.S)
    assert found, dom.stdout[-2000:]
    boxes = json.loads(html.unescape(found.group(1)))
    texts = [b for b in boxes if b["tag"] == "text" and b["w"] > 0]
    bars = [b for b in boxes if b["tag"] == "rect"]
    assert len(texts) > 20 and len(bars) > 10
    clashes = [(a["text"], b["text"]) for i, a in enumerate(texts) for b in texts[i + 1:]
               if _overlaps(a, b)]
    clashes += [(a["text"], "bar") for a in texts for b in bars if _overlaps(a, b)]
    assert not clashes, clashes[:5]
