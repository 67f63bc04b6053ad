"""Algorithms, key encodings, keyids and signing engines."""
