"""PKCS#11 tokens and key custody (wrapped or native)."""
