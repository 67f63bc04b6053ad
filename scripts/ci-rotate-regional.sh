#!/usr/bin/env bash
# Scripted 90-day regional-root rotation for CI (SoftHSM2 or any PKCS#11 token), with no
# person present: every input comes from files and environment variables, nothing prompts.
#
#   region side:  writroot region keygen  -> key-request transfer bundle (proof of possession)
#   fleet side:   plan -> M approvals -> ceremony run --yes -> verify -> status
#
# Required environment:
#   WRITROOT_REGION         region code, e.g. EUCOM
#   WRITROOT_VERSION        the new regional-root version (the previous one + 1)
#   WRITROOT_FLEET          fleet id
#   WRITROOT_FLEET_KEYID    the fleet root's keyid (pinned: the ceremony signs with no other)
#   WRITROOT_FLEET_ROOT     the latest fleet-root or fleet-rotation envelope
#   WRITROOT_ROSTER         the envelope carrying the roster in force (often the same file)
#   WRITROOT_ANCHOR         the pinned fleet anchor (fingerprint or PEM file): the plan is
#                           locked and approved against it, and verified under it
#   WRITROOT_REGION_TOKEN   label of the region's token; WRITROOT_REGION_PIN its PIN source
#   WRITROOT_FLEET_HOST     host profile of the fleet HSM (module, token, PIN source, and
#                           the same anchor: and trust: the ceremony checks against)
#   WRITROOT_APPROVERS      space-separated custodian=keyfile=PASSPHRASE_ENV_VAR triples
#   WRITROOT_WORK           a new directory for this rotation's files and outputs
#   WRITROOT_ENCLAVES       the enclaves the region keeps, as a YAML flow list, e.g.
#                           '[{trust_domain: eucom-1.writsov.com, impact_level: IL4}]'
# Optional: WRITROOT_TRUST (the fleet's published set: a directory of the statements from
#   the anchor to the fleet root in force, needed once the fleet root has been rotated),
#   WRITROOT (the command, default `writroot`),
#   WRITROOT_ALGORITHM (default SLH-DSA-SHA2-256s), WRITROOT_VALIDITY_DAYS (104),
#   WRITROOT_PKCS11_MODULE, WRITROOT_ALLOW_NETWORK=1 (CI runners have network up).
# Exit codes are writroot's: 0 ok, 1 refused or not verified, 2 bad input, 3 HSM, 4 quorum.
set -euo pipefail

for name in WRITROOT_REGION WRITROOT_VERSION WRITROOT_FLEET WRITROOT_FLEET_KEYID \
            WRITROOT_FLEET_ROOT WRITROOT_ROSTER WRITROOT_ANCHOR WRITROOT_REGION_TOKEN \
            WRITROOT_REGION_PIN WRITROOT_FLEET_HOST WRITROOT_APPROVERS WRITROOT_WORK \
            WRITROOT_ENCLAVES; do
  if [ -z "${!name:-}" ]; then echo "ci-rotate-regional: $name is not set" >&2; exit 2; fi
done
WRITROOT=${WRITROOT:-writroot}
ALGORITHM=${WRITROOT_ALGORITHM:-SLH-DSA-SHA2-256s}
DAYS=${WRITROOT_VALIDITY_DAYS:-104}
NET=()
[ "${WRITROOT_ALLOW_NETWORK:-0}" = 1 ] && NET=(--allow-network)
PIN=(--anchor "$WRITROOT_ANCHOR")
[ -n "${WRITROOT_TRUST:-}" ] && PIN+=(--trust "$WRITROOT_TRUST")

region=$WRITROOT_REGION
lower=$(printf '%s' "$region" | tr 'A-Z' 'a-z')
work=$WRITROOT_WORK
if [ -e "$work" ]; then echo "ci-rotate-regional: $work exists (outputs are write-once)" >&2; exit 2; fi
mkdir -p "$work/ceremony/requests"
log() { printf 'ci-rotate-regional: %s\n' "$*" >&2; }

# 1. Region side: the new key in the region's HSM, and its key request.
$WRITROOT region keygen --region "$region" --fleet "$WRITROOT_FLEET" \
  --label "$lower-root-$WRITROOT_VERSION" --algorithm "$ALGORITHM" \
  --token-label "$WRITROOT_REGION_TOKEN" --pin "$WRITROOT_REGION_PIN" \
  --backup-dir "$work/region-keys" --out "$work/request.tar" --json > "$work/keygen.json"
log "key request $(grep -o '"words": "[^"]*"' "$work/keygen.json")"

# 2. Across the gap: the fleet side checks the bundle before it uses it.
digest=$(grep -o '"manifest_sha256": "[0-9a-f]*"' "$work/keygen.json" | grep -o '[0-9a-f]\{64\}')
$WRITROOT bundle import "$work/request.tar" "$work/imported" --expect "$digest" --json > /dev/null
cp "$work/request.tar" "$work/ceremony/requests/$lower-$WRITROOT_VERSION.tar"
cp "$WRITROOT_FLEET_ROOT" "$work/ceremony/fleet-root.dsse.json"
cp "$WRITROOT_ROSTER" "$work/ceremony/roster.dsse.json"
cat > "$work/ceremony/plan.yaml" <<PLAN
plan: 1
ceremony: ci-rotate-$lower-$WRITROOT_VERSION
fleet: $WRITROOT_FLEET
signer: "$WRITROOT_FLEET_KEYID"
roster: roster.dsse.json
fleet_root: fleet-root.dsse.json
operations:
  - op: sign-regional-root
    region: $region
    request: requests/$lower-$WRITROOT_VERSION.tar
    version: $WRITROOT_VERSION
    validity_days: $DAYS
    enclaves: $WRITROOT_ENCLAVES
PLAN
$WRITROOT ceremony plan "$work/ceremony/plan.yaml" "${PIN[@]}" --json > "$work/plan.json"
log "plan locked: $(grep -o '"plan_sha256": "[^"]*"' "$work/plan.json")"

# 3. Approvals: each custodian's key file and passphrase (from the CI secret store).
for triple in $WRITROOT_APPROVERS; do
  IFS='=' read -r who keyfile passvar <<<"$triple"
  $WRITROOT ceremony approve "$work/ceremony/plan.lock.json" --yes --custodian "$who" \
    --key "$keyfile" --passphrase "env:$passvar" --out "$work/ceremony/approvals" "${PIN[@]}" \
    > /dev/null
done

# 4. The ceremony: quorum counted before the HSM opens; outputs all or nothing.
$WRITROOT ceremony run "$work/ceremony/plan.lock.json" --approvals "$work/ceremony/approvals" \
  --host "$WRITROOT_FLEET_HOST" --out "$work/out" --yes "${NET[@]}" --json > "$work/run.json"

# 5. Verify as an auditor would, and show the calendar.
$WRITROOT verify "$WRITROOT_FLEET_ROOT" "$WRITROOT_ROSTER" "$work/out/artifacts" \
  --anchor "$WRITROOT_ANCHOR" --json > "$work/verify.json"
# status exits 1 when something else is overdue: report it, the rotation itself succeeded.
loud=0
$WRITROOT status "$WRITROOT_FLEET_ROOT" "$WRITROOT_ROSTER" "$work/out/artifacts" \
  --anchor "$WRITROOT_ANCHOR" --json > "$work/status.json" || loud=$?
[ "$loud" -le 1 ] || exit "$loud"
[ "$loud" -eq 0 ] || log "status: some keys are overdue, expired or revoked (see status.json)"
log "rotated $region to version $WRITROOT_VERSION; verified; outputs in $work/out"
