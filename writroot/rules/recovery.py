"""Recovery rules for a locked plan: who holds shares, how many, and what a restore or a
re-split may name (pure: the plan and the policy in force only)."""

from __future__ import annotations

from typing import Any

from writroot.rules import Violation

RESTORE = "restore-key"
RESPLIT = "resplit-recovery"
OPS = (RESTORE, RESPLIT)
#: Operations that make a key (and so may make its recovery split).
KEY_BIRTH = ("generate-fleet-root", "rotate-fleet-root")


def holders_rule(holders: list[str] | None, policy: dict[str, Any] | None,
                 where: str) -> list[Violation]:
    """Holders named: the policy says M and N, and there are exactly N holders."""
    if holders is None:
        return []
    if policy is None or "recovery_shares" not in policy:
        return [Violation("recovery-policy", where, "recovery holders are named but the fleet "
                          "policy sets no recovery_threshold and recovery_shares")]
    if len(holders) != policy["recovery_shares"]:
        return [Violation("recovery-policy", where, f"the policy splits recovery among "
                          f"{policy['recovery_shares']} holders; the plan names "
                          f"{len(holders)}")]
    return []


def custody_rule(op: dict[str, Any], at: str) -> list[Violation]:
    """A key in native custody never leaves the token, so it cannot be sealed for recovery
    holders: refused when the plan is locked, not at the run after the prompts."""
    if op.get("custody") == "native" and "recovery_holders" in op:
        return [Violation("recovery-custody", f"{at}recovery_holders", "a key in native "
                          "custody never leaves the token, so writroot cannot seal it for "
                          "recovery holders: drop recovery_holders (and use the token "
                          "vendor's backup) or set custody: wrapped")]
    return []


def key_custody(op: dict[str, Any]) -> str:
    """The custody a key-birth operation asks of the token: wrapped when recovery holders
    are named, else as the plan says, else the token's best (auto)."""
    if "recovery_holders" in op:
        return "wrapped"
    return str(op.get("custody", "auto"))


def regional_rule(op: dict[str, Any], policy: dict[str, Any] | None,
                  at: str) -> list[Violation]:
    """sign-regional-root under a policy with regional_recovery: the key request carries a
    recovery split made at the key's birth, M-of-N as the policy says, for that very key."""
    if policy is None or policy.get("regional_recovery") != "required" \
            or not isinstance(op.get("key"), dict):
        return []
    split = op.get("request_recovery")
    where = f"{at}request"
    if split is None:
        return [Violation("regional-recovery", where, "the fleet policy requires regional "
                          "roots to be born with a recovery split; the key request carries "
                          "none (writroot region keygen --recovery-holder ...)")]
    out: list[Violation] = []
    want = (policy["recovery_threshold"], policy["recovery_shares"])
    if (split["threshold"], split["shares"]) != want:
        out.append(Violation("regional-recovery", where, f"the key request's recovery split "
                             f"is {split['threshold']}-of-{split['shares']}; the fleet policy "
                             f"requires {want[0]}-of-{want[1]}"))
    if "keyid" in op["key"] and split["keyid"] != op["key"]["keyid"]:
        out.append(Violation("regional-recovery", where, "the recovery split restores "
                             f"{split['keyid']}, not the requested key"))
    return out


def structure(plan: dict[str, Any]) -> list[Violation]:
    kinds = [op["op"] for op in plan["operations"]]
    out: list[Violation] = []
    if RESTORE in kinds:
        if kinds.index(RESTORE) != 0 or kinds.count(RESTORE) > 1:
            out.append(Violation("plan-structure", "operations", "restore-key is the first "
                                 "operation, and a plan restores one key"))
        if plan["signer"] == "generate":
            out.append(Violation("plan-structure", "operations", "a genesis plan restores "
                                 "nothing"))
    if kinds.count(RESPLIT) > 1:
        out.append(Violation("plan-structure", "operations", "a plan re-splits once"))
    for i, op in enumerate(plan["operations"]):
        if op["op"] not in OPS or not isinstance(op["recovery"], dict):
            continue  # not locked yet: the file is read when the plan is locked
        if op["recovery"]["keyid"] != plan["signer"]:
            out.append(Violation("recovery-key", f"operations[{i}].recovery",
                                 f"the recovery file restores {op['recovery']['keyid']}, not "
                                 f"the plan's signer {plan['signer']}"))
        if op["recovery"]["fleet"] != plan["fleet"]:
            out.append(Violation("recovery-key", f"operations[{i}].recovery",
                                 f"the recovery file is of fleet {op['recovery']['fleet']!r}"))
    return out


def operation(op: dict[str, Any], policy: dict[str, Any] | None, at: str) -> list[Violation]:
    if op["op"] in KEY_BIRTH:
        own = op.get("policy", policy) if op["op"] == "rotate-fleet-root" else policy
        return [*custody_rule(op, at),
                *holders_rule(op.get("recovery_holders"), own, f"{at}recovery_holders")]
    if op["op"] == RESPLIT:
        return holders_rule(op["recovery_holders"], policy, f"{at}recovery_holders")
    if op["op"] == "sign-regional-root":
        return regional_rule(op, policy, at)
    return []
