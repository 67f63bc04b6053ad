"""writroot: offline trust-root ceremonies for a federation's SLH-DSA fleet root."""

__version__ = "0.1.0"
