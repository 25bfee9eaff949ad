"""Probes on every layer: the selection probe, the layer sweep and the task registry."""
