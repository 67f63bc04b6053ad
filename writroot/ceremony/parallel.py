"""Signing a ceremony's statements on every core (host profile `workers`; 1 is serial).

Wrapped custody: the key is unsealed once, in this process, for the batch; `workers` child
processes are forked and each inherits that memory (the key crosses no pipe and touches no
disk), signs its share of the messages (message i goes to worker i mod N), sends the
signatures back, wipes its copy and leaves with `os._exit` (no PKCS#11 finaliser runs in a
child). The parent wipes its copy as soon as the children are forked. Every signature is then
checked here by an engine independent of the signer, before anything is written; output
order is the operations' order whatever the number of workers.

Native custody signs serially on the token's own session (the token holds the key; its
concurrency is the token's business).
"""

from __future__ import annotations

import os

from writroot.crypto import engines
from writroot.crypto.keys import wipe
from writroot.envelope import Envelope, Signature
from writroot.errors import HSMError, VerificationFailed
from writroot.hsm.custody import Custody
from writroot.signing import Signed, sign_statement

#: A batch smaller than this is signed serially (forking costs more than it saves).
MIN_PARALLEL = 2


def sign_all(custody: Custody, keyid: str, payloads: list[bytes], workers: int) -> list[Signed]:
    """Each payload signed by `keyid`, in order; in parallel for a wrapped key."""
    if workers <= 1 or len(payloads) < MIN_PARALLEL or not hasattr(os, "fork"):
        return [sign_statement(custody, keyid, p) for p in payloads]
    record = custody.find(keyid)
    if record.custody != "wrapped":
        return [sign_statement(custody, keyid, p) for p in payloads]
    from writroot.signing import prepare

    prepared = [prepare(keyid, p) for p in payloads]
    alg = record.key.algorithm
    signer = engines.signer_for(alg)
    private = custody.unseal(record)
    try:
        signatures = _forked(signer.name, alg.name, private,
                             [e.pae() for e, _st in prepared], min(workers, len(payloads)))
    finally:
        wipe(private)
    checker = engines.independent_for(alg, signer)
    out = []
    for (envelope, statement), signature in zip(prepared, signatures, strict=True):
        if not checker.verify(alg, record.key.raw, envelope.pae(), signature):
            raise VerificationFailed(f"fresh signature by {keyid} failed the independent check "
                                     f"({checker.name}); nothing written")
        signed = Envelope(envelope.payload_type, envelope.payload, (Signature(keyid, signature),))
        out.append(Signed(signed, statement, signer.name, checker.name))
    return out


def _forked(engine: str, algorithm: str, private: bytearray, messages: list[bytes],
            workers: int) -> list[bytes]:
    """Fork `workers` children that sign messages[w::workers]; their signatures, in order."""
    import pickle

    children: list[tuple[int, int]] = []
    try:
        for w in range(workers):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: sign, report, wipe, leave without finalisers
                os.close(read_end)
                code = 0
                try:
                    result = _sign_share(engine, algorithm, private, messages[w::workers])
                    data = pickle.dumps(result)
                    with os.fdopen(write_end, "wb") as pipe:
                        pipe.write(data)
                except BaseException:
                    code = 1
                finally:
                    wipe(private)
                os._exit(code)
            os.close(write_end)
            children.append((pid, read_end))
        results: list[list[bytes]] = []
        for pid, read_end in children:
            with os.fdopen(read_end, "rb") as pipe:
                data = pipe.read()
            _pid, status = os.waitpid(pid, 0)
            if status != 0 or not data:
                raise HSMError("a signing worker failed; nothing was written")
            results.append(pickle.loads(data))  # noqa: S301 - our own child's output
        children = []
    finally:
        for pid, read_end in children:  # on failure: reap whatever is left
            try:
                os.close(read_end)
                os.waitpid(pid, 0)
            except OSError:
                pass
    out: list[bytes] = [b""] * len(messages)
    for w, share in enumerate(results):
        out[w::workers] = share
    return out


def _sign_share(engine: str, algorithm: str, private: bytearray,
                messages: list[bytes]) -> list[bytes]:
    from writroot.crypto.algorithms import by_name

    alg = by_name(algorithm)
    signer = engines.signer_for(alg)
    if signer.name != engine:
        raise HSMError(f"worker engine {signer.name} is not {engine}")
    return [signer.sign(alg, private, m) for m in messages]
