"""Fleet-root recovery (DESIGN §3 "Recovery"): a random 256-bit recovery key split M-of-N
with SLIP-39 among recovery-share holders, and the private key sealed under it into a
recovery blob in the ceremony that made the key.

- `split`: the split, its public description, rebuilding the recovery key from shares.
- `blob`: sealing and opening the recovery blob (AES-256-GCM, AAD binds fleet, keyid,
  algorithm, role and split id).
- `sharefile`: a share encrypted under its holder's passphrase (scrypt + AES-256-GCM).
- `handout`: giving shares to holders (files, or the console once per holder).
- `collect`: reading shares back (files with passphrases, prompts, environment).
- `escrow`, `restore`, `resplit`: the ceremony operations; `rehearse`: the rehearsal.

No share, recovery key or private key is ever written anywhere in clear.
"""
