"""Serrano & Smith (2019), Is Attention Interpretable?: erasing attention weights one at a time (§4) and sets of them in
ranked order (§5)."""
