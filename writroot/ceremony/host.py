"""Host profiles (module, token, PIN or PIN shares) and the air-gap check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from writroot.ceremony import strictyaml
from writroot.ceremony.trust import Pinned, pinned_from
from writroot.errors import BadInput
from writroot.statements import schema as s

#: The most signing processes a host profile may ask for.
MAX_WORKERS = 64


@dataclass(frozen=True)
class HostProfile:
    module: str | None
    token_label: str | None
    token_serial: str | None
    pin_source: str
    pin_shares: tuple[str, ...]
    #: Processes that sign a ceremony's statements (1: serial); default one per core.
    workers: int = 0
    #: The pinned fleet anchor (a fingerprint, or a PEM path relative to the profile) and
    #: the fleet's published set (a directory): required for every plan but genesis.
    anchor: str | None = None
    trust: Path | None = None
    where: str = "host profile"

    def pinned(self) -> Pinned | None:
        return pinned_from(self.anchor, self.trust, f"{self.where}: anchor")

    def __post_init__(self) -> None:
        if self.workers <= 0:
            object.__setattr__(self, "workers", default_workers())


def default_workers() -> int:
    """One signing process per core this process may run on."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def load_host_profile(path: Path) -> HostProfile:
    located = strictyaml.load_file(path)
    try:
        host = s.record(located.value, "host", {}, {
            "module": s.string, "token_label": s.string, "token_serial": s.string,
            "pin": s.string, "pin_shares": s.list_of(s.string, 1, 16, unique=False),
            "workers": s.integer(1, MAX_WORKERS), "anchor": s.string, "trust": s.string})
    except BadInput as exc:
        raise located.rebase(exc, "host") from None
    if "pin" in host and "pin_shares" in host:
        raise BadInput("give pin or pin_shares, not both", located.where("pin_shares"))
    if "token_label" not in host and "token_serial" not in host:
        raise BadInput("name the token by token_label or token_serial", located.where(""))
    anchor = host.get("anchor")
    if anchor is not None and (path.parent / anchor).is_file():
        anchor = str(path.parent / anchor)  # a PEM beside the profile
    trust = path.parent / host["trust"] if "trust" in host else None
    if trust is not None and not trust.is_dir():
        raise BadInput(f"{host['trust']!r} is not a directory", located.where("trust"))
    if trust is not None and anchor is None:
        raise BadInput("trust: is read against the anchor: add anchor: (the fleet root's "
                       "fingerprint or PEM)", located.where("trust"))
    return HostProfile(host.get("module"), host.get("token_label"), host.get("token_serial"),
                       host.get("pin", "prompt"), tuple(host.get("pin_shares", ())),
                       host.get("workers", 0), anchor, trust, str(path))


def network_interfaces_up(sys_class_net: Path = Path("/sys/class/net")) -> list[str] | None:
    """Non-loopback interfaces whose operstate is up (or unknown but carrying IFF_UP); an
    interface whose state cannot be read counts as up. None when the list cannot be read at
    all (no /sys/class/net, as in a chroot): nobody looked, so nobody may record "none"."""
    try:
        names = sorted(p.name for p in sys_class_net.iterdir())
    except OSError:
        return None
    up = []
    for name in names:
        if name == "lo":
            continue
        try:
            state = (sys_class_net / name / "operstate").read_text().strip()
            flags = int((sys_class_net / name / "flags").read_text().strip(), 16)
        except (OSError, ValueError):
            up.append(f"{name} (state unreadable)")
            continue
        if state == "up" or (state == "unknown" and flags & 0x1):
            up.append(name)
    return up
