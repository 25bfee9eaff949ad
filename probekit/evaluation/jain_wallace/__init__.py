"""Jain & Wallace (2019), Attention is not Explanation: agreement with other importance measures (§4.1), permuted
attention (§4.2.1), adversarial attention (§4.2.2)."""
