"""Syntax from attention: dependency heads, attention-only parsing probes, word vectors."""
