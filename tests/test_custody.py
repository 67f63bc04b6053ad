"""Custody on real SoftHSM2 tokens: wrapped keys, the KEK, sealing, pinning and native detection."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from tests.conftest import FleetKey, Token, run_cli
from writroot.crypto import engines
from writroot.crypto.algorithms import ML_DSA_87, SLH_DSA_SHA2_256F, SLH_DSA_SHA2_256S
from writroot.errors import BadInput, HSMError
from writroot.hsm.custody import Custody, KeyRecord
from writroot.hsm.p11raw import CKM_SLH_DSA, RawPQC
from writroot.hsm.pin import read_pin
from writroot.hsm.token import TokenSpec, open_session


@pytest.fixture(scope="module")
def token_a(make_token) -> Token:
    return make_token("custody-a")


@pytest.fixture(scope="module")
def token_b(make_token) -> Token:
    return make_token("custody-b")


@pytest.fixture(scope="module")
def fast_key(token_a: Token, module: str, tmp_path_factory) -> tuple[KeyRecord, Path]:
    backup_dir = tmp_path_factory.mktemp("backup")
    with token_a.session() as session:
        record = Custody(session, module).generate(SLH_DSA_SHA2_256F, "regional-root",
                                                   "fast-1", backup_dir=backup_dir)
    return record, backup_dir / "fast-1.sealed.json"


def test_softhsm2_is_detected_as_wrapped_only(token_a: Token, module: str) -> None:
    with token_a.session(rw=False) as session:
        custody = Custody(session, module)
        assert CKM_SLH_DSA not in custody.mechanisms()
        assert not custody.native_supported(SLH_DSA_SHA2_256S)
        assert custody.mode_for(SLH_DSA_SHA2_256S) == "wrapped"
        assert custody.mode_for(ML_DSA_87) == "wrapped"
        with pytest.raises(HSMError, match="native custody is impossible"):
            custody.mode_for(SLH_DSA_SHA2_256S, "native")


def test_native_call_reaches_the_token_and_is_refused(token_b: Token, module: str) -> None:
    """The PKCS#11 3.2 ctypes path runs for real; SoftHSM2 answers CKR_MECHANISM_INVALID."""
    with token_b.session() as session:
        with pytest.raises(HSMError, match=r"does not support this PKCS#11 3\.2 mechanism"):
            RawPQC(module, session.handle).generate_pair("slh-dsa", 0x09, "native-probe", b"\x01")


def test_fleet_root_256s_signs_and_is_independently_checked(fleet_256s: FleetKey,
                                                             module: str) -> None:
    with fleet_256s.token.session() as session:
        result = Custody(session, module).sign(fleet_256s.keyid, b"message")
    assert result.engine == "pqcrypto" and result.checked_by == "slh-dsa-py"
    assert result.custody == "wrapped"
    assert engines.load("slh-dsa-py").verify(SLH_DSA_SHA2_256S, fleet_256s.key.raw, b"message",
                                             result.signature)


def test_kek_is_sensitive_and_never_extractable(fast_key, token_a: Token, module: str) -> None:
    with token_a.session() as session:
        attrs = Custody(session, module).kek_attributes()
    check = attrs.pop("check_value")
    assert attrs == {"sensitive": True, "extractable": False, "always_sensitive": True,
                     "never_extractable": True, "token": True, "private": True, "local": True,
                     "modifiable": False, "bytes": 32}
    assert len(check) == 32


def test_generate_refuses_an_existing_label(fast_key, token_a: Token, module: str) -> None:
    with token_a.session() as session:
        custody = Custody(session, module)
        before = [r.keyid for r in custody.keys()]
        with pytest.raises(HSMError, match="already exists"):
            custody.generate(SLH_DSA_SHA2_256F, "regional-root", "fast-1")
        assert [r.keyid for r in custody.keys()] == before


def test_sign_pins_the_keyid(fast_key, token_a: Token, module: str) -> None:
    with token_a.session() as session:
        with pytest.raises(HSMError, match="no writroot key with keyid"):
            Custody(session, module).sign("0" * 64, b"x")


@pytest.mark.parametrize("change", ["keyid", "role", "algorithm-key"])
def test_sealed_key_does_not_open_under_another_binding(fast_key, token_a: Token, module: str,
                                                         change: str) -> None:
    record, _ = fast_key
    with token_a.session() as session:
        custody = Custody(session, module)
        sealed = custody.find(record.keyid)
        if change == "role":
            other = dataclasses.replace(sealed, role="fleet-root")
        else:
            alg = SLH_DSA_SHA2_256F if change == "keyid" else ML_DSA_87
            pk, _ = engines.signer_for(alg).keygen(alg)
            from writroot.crypto.keys import PublicKey

            other = dataclasses.replace(sealed, key=PublicKey(alg, pk))
        with pytest.raises(HSMError, match="did not open"):
            custody.unseal(other)


def test_sealed_key_does_not_open_after_tampering(fast_key, token_a: Token, module: str) -> None:
    record, _ = fast_key
    with token_a.session() as session:
        custody = Custody(session, module)
        sealed = custody.find(record.keyid)
        for i in (0, len(sealed.ciphertext) // 2, len(sealed.ciphertext) - 1):
            ct = bytearray(sealed.ciphertext)
            ct[i] ^= 0x01
            with pytest.raises(HSMError, match="did not open"):
                custody.unseal(dataclasses.replace(sealed, ciphertext=bytes(ct)))
        nonce = bytearray(sealed.nonce)
        nonce[0] ^= 0x80
        with pytest.raises(HSMError, match="did not open"):
            custody.unseal(dataclasses.replace(sealed, nonce=bytes(nonce)))


def test_sealed_backup_does_not_open_on_another_token(fast_key, token_b: Token,
                                                      module: str) -> None:
    _, backup = fast_key
    with token_b.session() as session:
        custody = Custody(session, module)
        custody.generate(SLH_DSA_SHA2_256F, "regional-root", "b-own-key")  # token B has a KEK
        with pytest.raises(HSMError, match="did not open"):
            custody.restore_backup(backup)
        assert all(r.label != "fast-1" for r in custody.keys())


def test_backup_restores_on_its_own_token(fast_key, token_a: Token, module: str) -> None:
    _, backup = fast_key
    with token_a.session() as session:
        custody = Custody(session, module)
        with pytest.raises(HSMError, match="on this token already"):
            custody.restore_backup(backup)
        relabelled = backup.parent / "relabelled.sealed.json"
        doc = json.loads(backup.read_text())
        doc["label"] = "fast-1-copy"
        relabelled.write_text(json.dumps(doc))
        with pytest.raises(HSMError, match="on this token already"):
            custody.restore_backup(relabelled)


def test_backup_file_holds_no_private_key(fast_key, token_a: Token, module: str) -> None:
    record, backup = fast_key
    with token_a.session() as session:
        custody = Custody(session, module)
        private = custody.unseal(custody.find(record.keyid))
    data = backup.read_bytes()
    assert bytes(private[:32]) not in data and bytes(private[32:64]) not in data
    assert json.loads(data)["sealed"]["aead"] == "AES-256-GCM"


def test_backup_is_write_once(token_a: Token, module: str, tmp_path: Path) -> None:
    (tmp_path / "dup.sealed.json").write_text("{}")
    with token_a.session() as session:
        with pytest.raises(BadInput, match="write-once"):
            Custody(session, module).generate(SLH_DSA_SHA2_256F, "regional-root", "dup",
                                              backup_dir=tmp_path)


def test_wrong_pin_is_an_hsm_error(token_a: Token) -> None:
    with pytest.raises(HSMError, match="PIN incorrect"):
        with open_session(token_a.spec, pin_bytes=bytearray(b"not-the-pin")):
            pass


def test_unknown_token_is_an_hsm_error(module: str) -> None:
    with pytest.raises(HSMError, match="no token with label"):
        with open_session(TokenSpec(module, "no-such-token"), pin_bytes=bytearray(b"x")):
            pass


def test_pin_sources(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SOME_PIN", "1234-abcd")
    assert read_pin("env:SOME_PIN") == bytearray(b"1234-abcd")
    pin_file = tmp_path / "pin"
    pin_file.write_text("5678\n")
    pin_file.chmod(0o644)
    with pytest.raises(BadInput, match="chmod 600"):
        read_pin(f"file:{pin_file}")
    pin_file.chmod(0o600)
    assert read_pin(f"file:{pin_file}") == bytearray(b"5678")
    link = tmp_path / "pin-link"
    link.symlink_to(pin_file)
    with pytest.raises(BadInput, match="cannot read secret file"):
        read_pin(f"file:{link}")
    for bad in ("env:NOT_SET_ANYWHERE", "argv:1234", "1234", "file:"):
        with pytest.raises(BadInput):
            read_pin(bad)


def test_hsm_info_cli(fast_key, token_a: Token) -> None:
    proc = run_cli("hsm", "info", *token_a.cli_args(), "--login", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["pqc_mechanisms"] == []
    assert info["custody"] == {"SLH-DSA-SHA2-256s": "wrapped", "ML-DSA-87": "wrapped",
                               "ML-DSA-65": "wrapped"}
    assert info["parameter_sets"] == [] and info["deviations"] == []  # nothing to probe
    assert info["token"]["label"] == token_a.spec.label
    assert info["kek"]["extractable"] is False
    key = next(k for k in info["keys"] if k["label"] == "fast-1")
    assert key == {**key, "role": "regional-root", "algorithm": "SLH-DSA-SHA2-256f",
                   "keyid": fast_key[0].keyid, "custody": "wrapped",
                   "private_key": "sealed under the token's KEK"}
    text = run_cli("hsm", "info", *token_a.cli_args())
    assert text.returncode == 0 and "fast-1" in text.stdout and "wrapped" in text.stdout


def test_hsm_cli_errors_exit_3_and_never_echo_the_pin(token_a: Token) -> None:
    proc = run_cli("hsm", "info", "--token-label", str(token_a.spec.label), "--login",
                   "--pin", "env:WRONG_PIN", env={"WRONG_PIN": "definitely-wrong-pin"})
    assert proc.returncode == 3
    assert "PIN incorrect" in proc.stderr
    assert "definitely-wrong-pin" not in proc.stderr + proc.stdout
    missing = run_cli("hsm", "info", "--token-label", "absent-token")
    assert missing.returncode == 3 and "absent-token" in missing.stderr


def test_hsm_keygen_cli(token_b: Token, tmp_path: Path) -> None:
    proc = run_cli("hsm", "keygen", *token_b.cli_args(), "--algorithm", "ML-DSA-87",
                   "--role", "regional-root", "--label", "eucom-1", "--backup-dir",
                   str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["key"]["algorithm"] == "ML-DSA-87" and record["custody"] == "wrapped"
    assert (tmp_path / "eucom-1.sealed.json").exists()
    again = run_cli("hsm", "keygen", *token_b.cli_args(), "--role", "regional-root",
                    "--label", "eucom-1")
    assert again.returncode == 3 and "already exists" in again.stderr
    out = tmp_path / "eucom-1.pem"
    exported = run_cli("hsm", "export-public", *token_b.cli_args(), "--keyid",
                       record["key"]["keyid"], "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert out.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert os.environ[token_b.env_var] not in proc.stdout + proc.stderr
