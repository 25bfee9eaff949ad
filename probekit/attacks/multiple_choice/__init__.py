"""Si et al. (2019)'s attacks on multiple-choice models: un-readable test-time edits, un-answerable training sets, and
the table that runs them."""
