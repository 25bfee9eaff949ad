"""Readers and generators of inputs: text, CoNLL-U, GAP, documents, grammars and Lin et al.'s conditions."""
