"""`writroot witness init|cosign|status`: an offline witness for the federation's logs."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from writroot.cli.common import json_option, print_json
from writroot.hsm.pin import PIN_SOURCE_HELP as PASS_HELP

_FILE = click.Path(path_type=Path, dir_okay=False)


@click.group()
def witness() -> None:
    """Cosign log checkpoints (C2SP tlog-cosignature, ML-DSA-44) after checking each is
    consistent with the last one cosigned; refuse a rollback or a split view with evidence."""


def _now() -> int:
    return int(time.time())


def _iso(when: int) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_state(path: Path) -> tuple[Any, bytes]:
    from writroot.jsonio import loads_strict, read_capped
    from writroot.log.witness import MAX_STATE_BYTES, state_from_json

    data = read_capped(path, MAX_STATE_BYTES)
    return state_from_json(loads_strict(data, str(path), MAX_STATE_BYTES), str(path)), data


def _state_bytes(state: Any) -> bytes:
    import json

    from writroot.log.witness import state_to_json

    return (json.dumps(state_to_json(state), indent=2, sort_keys=True) + "\n").encode()


@witness.command()
@click.option("--name", required=True, help="The witness's key name, a schema-less URL "
              "(e.g. auditor.example/witness).")
@click.option("--key", "key_path", type=_FILE, required=True,
              help="New ML-DSA-44 key file (passphrase-encrypted PKCS#8, write-once).")
@click.option("--state", "state_path", type=_FILE, required=True,
              help="New state file: the last checkpoint cosigned per log.")
@click.option("--passphrase", default="prompt", show_default=True, metavar="SOURCE",
              help=f"Encrypts the key file: {PASS_HELP}.")
@json_option
def init(name: str, key_path: Path, state_path: Path, passphrase: str, as_json: bool) -> None:
    """Make a witness key and an empty state file; print the witness's vkey."""
    from writroot.crypto.algorithms import ML_DSA_44
    from writroot.errors import BadInput
    from writroot.hsm.pin import read_pin
    from writroot.log import cosignature, note
    from writroot.log.witness import WitnessState
    from writroot.outputs import check_destination, publish_file
    from writroot.quorum.custodian import create_file_key

    note.check_name(name, "--name")
    for path, what in ((key_path, "key file"), (state_path, "state file")):
        check_destination(path, what)
    if key_path.resolve() == state_path.resolve():
        raise BadInput("the key and the state must be two files", "--state")
    secret = read_pin(passphrase, "new key passphrase")
    key = create_file_key(key_path, secret, ML_DSA_44)
    vkey = cosignature.vkey(name, key)
    try:
        publish_file(state_path, _state_bytes(WitnessState(name, vkey)), "state file", 0o600)
    except BaseException:
        key_path.unlink(missing_ok=True)
        raise
    if as_json:
        print_json({"witness": name, "vkey": vkey, "key": str(key_path),
                    "state": str(state_path)})
        return
    click.echo(f"witness {name}\nvkey {vkey}")


def log_key_for(origin: str, log_key: Path | None, anchor: str | None,
                trust: Path | None) -> Any:
    """The log key a checkpoint of `origin` must be signed by: the key the fleet or regional
    root certified for it, established from the pinned anchor over the fleet's published set
    (`--anchor`, `--trust`); or a PEM the operator gives (`--log-key`, for logs outside a
    writroot federation and for tests)."""
    from writroot.crypto.keys import PublicKey
    from writroot.errors import BadInput, VerificationFailed
    from writroot.jsonio import read_capped

    if (log_key is None) == (anchor is None):
        raise BadInput("give the pinned anchor and the published set (--anchor, --trust), "
                       "or a log key PEM (--log-key), not both", "--anchor")
    if log_key is not None:
        return PublicKey.from_pem(read_capped(log_key, 64 * 1024), str(log_key))
    from writroot.ceremony.trust import establish_inputs, pinned_from

    if trust is None:
        raise BadInput("the log key is established from the fleet's published set: give "
                       "--trust DIR", "--trust")
    pinned = pinned_from(anchor, trust, "--anchor")
    assert pinned is not None
    established = establish_inputs(pinned, {}, trust, datetime.now(UTC))
    key = established.log_keys.get(origin)
    if key is None:
        raise VerificationFailed(f"no log key for {origin!r} chains to the pinned anchor in "
                                 "the published set given", "--trust")
    return key


def _consistency(tiles: Path | None, old: int, cp: Any) -> list[bytes]:
    from writroot.errors import BadInput
    from writroot.log import tiles as tl
    from writroot.log import tree

    if cp.size <= old or old == 0:
        return []
    if tiles is None:
        raise BadInput(f"the log grew from {old} to {cp.size} entries: give its tiles "
                       "(--tiles DIR) for the consistency proof", "--tiles")
    reader = tl.TileHashReader(cp.size, cp.root, tl.DirectoryTileReader(tiles))
    return tree.consistency_proof(reader, old, cp.size)


@witness.command()
@click.argument("checkpoint_path", metavar="CHECKPOINT", type=_FILE)
@click.option("--key", "key_path", type=_FILE, required=True, help="The witness key file.")
@click.option("--state", "state_path", type=_FILE, required=True, help="The state file.")
@click.option("--anchor", metavar="FINGERPRINT|PEM",
              help="The pinned fleet anchor: the log key is the one certified for the "
              "checkpoint's origin, chained to it (with --trust).")
@click.option("--trust", type=click.Path(path_type=Path, file_okay=False),
              help="The fleet's published set the log key is established from.")
@click.option("--log-key", "log_key", type=_FILE,
              help="Instead of --anchor/--trust: the log's ML-DSA-44 public key (PEM).")
@click.option("--tiles", type=click.Path(path_type=Path, file_okay=False),
              help="The log's tiles (C2SP tlog-tiles), for the consistency proof.")
@click.option("--out", "out_path", type=_FILE, required=True,
              help="New file: the checkpoint with this witness's cosignature added.")
@click.option("--evidence", "evidence_path", type=_FILE,
              help="New file for the evidence of a refusal (default: OUT.evidence.json).")
@click.option("--passphrase", default="prompt", show_default=True, metavar="SOURCE",
              help=f"Unlocks the key file: {PASS_HELP}.")
@json_option
def cosign(checkpoint_path: Path, key_path: Path, state_path: Path, anchor: str | None,
           trust: Path | None, log_key: Path | None, tiles: Path | None, out_path: Path,
           evidence_path: Path | None, passphrase: str, as_json: bool) -> None:
    """Check a checkpoint (log signature, consistency with the last one cosigned) and cosign
    it. A rollback or a split view is refused (exit 1) and its evidence written."""
    import json

    from writroot.crypto.algorithms import ML_DSA_44
    from writroot.errors import BadInput, PolicyRefused, VerificationFailed
    from writroot.hsm.pin import read_pin
    from writroot.jsonio import read_capped
    from writroot.log import checkpoint, cosignature, note
    from writroot.log.witness import Conflict, advance, evidence_to_json
    from writroot.outputs import check_destination, publish_file, replace_file
    from writroot.quorum.custodian import load_file_key

    where = str(checkpoint_path)
    data = read_capped(checkpoint_path, note.MAX_NOTE_BYTES)
    text, sigs = note.split(data, where)
    cp = checkpoint.parse(text, where)
    key = log_key_for(cp.origin, log_key, anchor, trust)
    if key.algorithm is not ML_DSA_44:
        raise BadInput(f"log keys are ML-DSA-44, not {key.algorithm.name}", str(log_key))
    note.open_note(data, [cosignature.CosignatureVerifier(cp.origin, key)], where)
    state, state_data = _read_state(state_path)
    evidence_path = evidence_path or out_path.with_name(out_path.name + ".evidence.json")
    known = state.heads.get(cp.origin)
    proof = _consistency(tiles, known.checkpoint.size if known else 0, cp)
    now = _now()
    result = advance(state, cp, data, proof, now)
    if isinstance(result, Conflict):
        evidence = evidence_to_json(result, state.name, now)
        try:
            publish_file(evidence_path, (json.dumps(evidence, indent=2, sort_keys=True)
                                         + "\n").encode(), "evidence file")
        except BadInput as exc:
            raise PolicyRefused(f"refused ({result.kind}): {result.message}; the evidence "
                                f"could not be written: {exc}", where) from None
        raise PolicyRefused(f"refused ({result.kind}): {result.message}; evidence written to "
                            f"{evidence_path}", where)
    check_destination(out_path, "cosigned checkpoint")
    name, own_key = cosignature.parse_vkey(state.vkey, f"{state_path}.vkey")
    signer_key = load_file_key(key_path, read_pin(passphrase, "key passphrase"), ML_DSA_44)
    if signer_key.key != own_key:
        raise BadInput("this key file is not the witness's key in the state file",
                       str(key_path))
    signer = cosignature.CosignatureSigner(name, signer_key, lambda: now)
    others = [s for s in sigs if (s.name, s.key_id) != (name, signer.key_id)]
    cosigned = note.sign(text, [signer], others)
    mine = cosignature.CosignatureVerifier(name, own_key)
    try:
        note.open_note(cosigned, [mine], "the new cosignature")
    except VerificationFailed:
        raise VerificationFailed("the new cosignature does not verify; nothing was written",
                                 str(key_path)) from None
    if read_capped(state_path, len(state_data) + 1) != state_data:
        raise BadInput("the state file changed while cosigning; nothing was written",
                       str(state_path))
    replace_file(state_path, _state_bytes(result.state))  # remember first, then release
    publish_file(out_path, cosigned, "cosigned checkpoint")
    if as_json:
        print_json({"origin": cp.origin, "size": cp.size, "root": text.split("\n")[2],
                    "cosigned_at": _iso(now), "witness": name, "out": str(out_path),
                    "previous_size": known.checkpoint.size if known else None})
        return
    was = f" (was {known.checkpoint.size})" if known else " (first checkpoint of this log)"
    click.echo(f"cosigned {cp.origin} at size {cp.size}{was}: {out_path}")


@witness.command()
@click.option("--state", "state_path", type=_FILE, required=True, help="The state file.")
@json_option
def status(state_path: Path, as_json: bool) -> None:
    """Each log's last cosigned size, root hash and time."""
    import base64

    state, _ = _read_state(state_path)
    rows = [{"origin": origin, "size": h.checkpoint.size,
             "root": base64.b64encode(h.checkpoint.root).decode(),
             "cosigned_at": _iso(h.cosigned_at)}
            for origin, h in sorted(state.heads.items())]
    if as_json:
        print_json({"witness": state.name, "vkey": state.vkey, "logs": rows})
        return
    click.echo(f"witness {state.name}")
    if not rows:
        click.echo("no checkpoint cosigned yet")
    for r in rows:
        click.echo(f"{r['origin']}  size {r['size']}  root {r['root']}  cosigned "
                   f"{r['cosigned_at']}")
