"""Wiegreffe & Pinter (2019), Attention is not not Explanation: uniform and frozen attention (§3.2–3.3), the diagnostic
MLP (§4), the adversary trained per model (§5)."""
