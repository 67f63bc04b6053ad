"""The federation's logs as the trust engine sees them (DESIGN §6a): which log each issuer
keeps, and (from an `Established`) the log keys and the witness policy in force.

One log per issuing role, continuing across that role's key rotations:
    writroot/<fleet>/fleet              the fleet root's
    writroot/<fleet>/region/<REGION>    a regional root's
"""

from __future__ import annotations


def fleet_origin(fleet: str) -> str:
    return f"writroot/{fleet}/fleet"


def region_origin(fleet: str, region: str) -> str:
    return f"writroot/{fleet}/region/{region}"
