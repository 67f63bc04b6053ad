"""Host profiles (module, token, PIN or PIN shares) and the air-gap check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from writroot.ceremony import strictyaml
from writroot.errors import BadInput
from writroot.statements import schema as s


@dataclass(frozen=True)
class HostProfile:
    module: str | None
    token_label: str | None
    token_serial: str | None
    pin_source: str
    pin_shares: tuple[str, ...]


def load_host_profile(path: Path) -> HostProfile:
    located = strictyaml.load_file(path)
    try:
        host = s.record(located.value, "host", {}, {
            "module": s.string, "token_label": s.string, "token_serial": s.string,
            "pin": s.string, "pin_shares": s.list_of(s.string, 1, 16, unique=False)})
    except BadInput as exc:
        raise located.rebase(exc, "host") from None
    if "pin" in host and "pin_shares" in host:
        raise BadInput("give pin or pin_shares, not both", located.where("pin_shares"))
    if "token_label" not in host and "token_serial" not in host:
        raise BadInput("name the token by token_label or token_serial", located.where(""))
    return HostProfile(host.get("module"), host.get("token_label"), host.get("token_serial"),
                       host.get("pin", "prompt"), tuple(host.get("pin_shares", ())))


def network_interfaces_up(sys_class_net: Path = Path("/sys/class/net")) -> list[str]:
    """Non-loopback interfaces whose operstate is up (or unknown but carrying IFF_UP)."""
    up = []
    for iface in sorted(sys_class_net.iterdir()) if sys_class_net.is_dir() else []:
        if iface.name == "lo":
            continue
        try:
            state = (iface / "operstate").read_text().strip()
            flags = int((iface / "flags").read_text().strip(), 16)
        except (OSError, ValueError):
            continue
        if state == "up" or (state == "unknown" and flags & 0x1):
            up.append(iface.name)
    return up
