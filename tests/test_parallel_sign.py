"""Parallel signing in a ceremony (writroot/ceremony/parallel.py): a wrapped key signs a
batch in forked workers, every signature is checked independently, the order is the
operations' order whatever the worker count; the host profile's `workers` setting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import Token, raw_key, regional_payload
from writroot.ceremony import parallel
from writroot.ceremony.host import load_host_profile
from writroot.crypto import engines
from writroot.crypto.algorithms import SLH_DSA_SHA2_256F
from writroot.errors import BadInput
from writroot.hsm.custody import Custody


@pytest.fixture(scope="module")
def wrapped(make_token: Callable[[str], Token], module: str) -> tuple[Token, str]:
    token = make_token("parallel")
    with token.session() as session:
        record = Custody(session, module).generate(SLH_DSA_SHA2_256F, "fleet-root",
                                                   "fleet-root-1")
    return token, record.keyid


def _payloads(keyid: str, n: int) -> list[bytes]:
    issuer = SimpleNamespace(keyid=keyid)
    return [regional_payload(issuer, raw_key().key, serial=f"par-{i}")  # type: ignore[arg-type]
            for i in range(n)]


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_batch_in_order_and_checked(wrapped: tuple[Token, str], module: str,
                                    workers: int) -> None:
    token, keyid = wrapped
    payloads = _payloads(keyid, 5)
    with token.session() as session:
        custody = Custody(session, module)
        signed = parallel.sign_all(custody, keyid, payloads, workers)
        key = custody.find(keyid).key
    assert [s.envelope.payload for s in signed] == payloads
    verifier = engines.verifier_for(key.algorithm)
    for s in signed:
        (sig,) = s.envelope.signatures
        assert sig.keyid == keyid
        assert verifier.verify(key.algorithm, key.raw, s.envelope.pae(), sig.sig)
        assert s.checked_by != s.engine  # checked by an independent engine


def test_workers_setting(tmp_path: Path) -> None:
    host = tmp_path / "host.yaml"
    host.write_text("token_label: t\nworkers: 2\n")
    assert load_host_profile(host).workers == 2
    host.write_text("token_label: t\n")
    assert load_host_profile(host).workers >= 1  # default: one per core
    for bad in ("0", "65", "two", "true"):
        host.write_text(f"token_label: t\nworkers: {bad}\n")
        with pytest.raises(BadInput) as err:
            load_host_profile(host)
        assert "workers" in str(err.value) and str(host) in str(err.value)
