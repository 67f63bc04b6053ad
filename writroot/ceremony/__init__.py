"""Ceremonies: strict plans, approvals, the quorum-gated runner and its transcript."""
