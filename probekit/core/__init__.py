"""The hook layer and what it stands on: encoders, examples, sub-token alignment, extraction, the cache."""
