"""docs/runbook.md §12 runs exactly as written: its `sh runbook` fences are the commands and its
`file=PATH` fences the files, taken in document order and run by bash in an empty directory on
real SoftHSM2 tokens (the runbook sets SOFTHSM2_CONF itself), with the venv's writroot on PATH."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

RUNBOOK = Path(__file__).resolve().parent.parent / "docs" / "runbook.md"
FENCE = re.compile(r"^```(\w+) (runbook|file=(\S+))\n(.*?)^```$", re.M | re.S)
SECRET = re.compile(r"\b(?:\w+_PIN|PP)=('[^']*'|\S+)")


def runbook_script(text: str) -> tuple[str, list[str]]:
    """One bash script from the marked fences, in order; and the list of what each fence was."""
    lines = ["set -euo pipefail", 'ROOT="$PWD"',
             "trap 'echo \"runbook: exit $? at: $BASH_COMMAND\" >&2' ERR"]
    kinds: list[str] = []
    for match in FENCE.finditer(text):
        lang, _marker, path, body = match.groups()
        if path is None:
            kinds.append(f"{lang} runbook")
            lines.append(body.rstrip("\n"))
            continue
        kinds.append(f"file {path}")
        target = f'"$ROOT"/{shlex.quote(path)}'
        lines.append(f'mkdir -p "$(dirname {target})"')
        lines.append(f"cat > {target} <<'RUNBOOK_FILE_END'\n{body.rstrip(chr(10))}\n"
                     "RUNBOOK_FILE_END")
    return "\n".join(lines) + "\n", kinds


def test_runbook_extraction_finds_the_worked_example() -> None:
    script, kinds = runbook_script(RUNBOOK.read_text(encoding="utf-8"))
    assert kinds.count("sh runbook") >= 6
    assert {"file genesis/roster.yaml", "file genesis/genesis.yaml", "file host.yaml"} <= set(kinds)
    for command in ("writroot token init", "writroot region keygen", "writroot bundle inspect",
                    "writroot custodian keygen", "writroot ceremony plan",
                    "writroot ceremony approve", "writroot ceremony run", "writroot publish",
                    "writroot verify", "writroot status", "writroot audit"):
        assert command in script, command


def test_runbook_worked_example_runs(tmp_path: Path) -> None:
    script, _ = runbook_script(RUNBOOK.read_text(encoding="utf-8"))
    workdir = tmp_path / "rehearsal"
    workdir.mkdir()
    script_file = tmp_path / "runbook.sh"
    script_file.write_text(script, encoding="utf-8")
    venv_bin = Path(sys.executable).parent
    assert (venv_bin / "writroot").exists()
    assert shutil.which("jq"), "the runbook's rehearsal reads --json outputs with jq: install jq"
    env = {k: v for k, v in os.environ.items()
           if k != "SOFTHSM2_CONF" and not k.startswith("WRITROOT_")}
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(["bash", str(script_file)], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "Traceback" not in output
    assert (workdir / "hsm" / "softhsm2.conf").is_file()
    assert "5 of 5 artifacts verified" in proc.stdout
    assert proc.stdout.count("ceremony-record signature: verified") == 2
    assert "matches the digest read from the other side" in output
    assert (workdir / "report.md").is_file() and (workdir / "report.html").is_file()
    published = sorted(str(p.relative_to(workdir / "published"))
                       for p in (workdir / "published").rglob("*") if p.is_file())
    assert "fleet-root.pem" in published
    assert "records/writsov-genesis.ceremony-record.dsse.json" in published
    assert not any("sealed" in p for p in published)
    # no secret the runbook exports reaches a file (tokens, outputs, reports, key files)
    secrets = [value.strip("'") for value in SECRET.findall(script)]
    assert len(secrets) >= 4
    for path in workdir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"{secret!r} in {path}"
