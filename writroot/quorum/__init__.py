"""Custodians, rosters, approvals and the quorum count."""
