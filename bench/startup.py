"""Section 4: cold start of the `writroot` CLI against a bare interpreter."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench import Row
from bench.timing import seconds

SECTION = "startup"
RUNS = 10
TARGET = 0.3  # seconds
WRITROOT = str(Path(sys.executable).with_name("writroot"))


def cold_start(argv: list[str]) -> float:
    """Median wall time of `argv` as a fresh process, in seconds."""
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}

    def once() -> None:
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                       env=env)

    return statistics.median(seconds(once) for _ in range(RUNS))


def run() -> list[Row]:
    note = f"median of {RUNS} runs"
    version = cold_start([WRITROOT, "--version"])
    help_ = cold_start([WRITROOT, "--help"])
    bare = cold_start([sys.executable, "-c", "pass"])
    return [
        Row(SECTION, "writroot --version", version, "s", TARGET, note=note),
        Row(SECTION, "writroot --help", help_, "s", TARGET, note=note),
        Row(SECTION, "python -c pass", bare, "s", note=note),
        Row(SECTION, "writroot --version / python -c pass", version / bare, "x"),
        Row(SECTION, "writroot --help / python -c pass", help_ / bare, "x"),
    ]
