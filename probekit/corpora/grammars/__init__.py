"""Grammars shipped with probekit (read with importlib.resources)."""
