"""Fine-tuned models against their base: layer-wise CKA, per-head attention change, probes of both."""
