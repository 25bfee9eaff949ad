"""probekit: probe BERT-family encoders and analyse their attention.

One forward pass through a Hugging Face encoder gives per-layer hidden states and per-head attention,
aligned from sub-tokens to words; probes, confusion scores and attention analyses build on that.
"""
__version__ = "0.1.0"
