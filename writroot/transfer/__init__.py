"""Air-gap transfer bundles: files with a manifest and a short digest to read aloud.

A bundle is a directory or a tar file holding MANIFEST.json (every file's path, size and
SHA-256, canonical JSON) and exactly the files it lists. Reading verifies everything in memory
before anything is written; see docs/transfer.md for the format and the safety rules.
"""

from __future__ import annotations

from writroot.transfer.bundle import (
    export_bundle,
    export_files,
    import_bundle,
    inspect_bundle,
    read_bundle,
    read_bundle_bytes,
)
from writroot.transfer.manifest import (
    Manifest,
    ManifestFile,
    build_manifest,
    check_expect,
    human_digest,
    parse_manifest,
)
from writroot.transfer.rules import MANIFEST_NAME, check_path

__all__ = [
    "MANIFEST_NAME",
    "Manifest",
    "ManifestFile",
    "build_manifest",
    "check_expect",
    "check_path",
    "export_bundle",
    "export_files",
    "human_digest",
    "import_bundle",
    "inspect_bundle",
    "parse_manifest",
    "read_bundle",
    "read_bundle_bytes",
]
