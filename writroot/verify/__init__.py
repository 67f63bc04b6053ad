"""Offline verification: a pure core (`core`) and the file-gathering shell (`files`)."""
