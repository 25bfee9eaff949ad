"""Quiet is scoped: a library call's quiet=True and ``pk.quiet()`` end with their call or block."""
from __future__ import annotations

import probekit as pk
from probekit.core import progress


def test_quiet_block_restores_bars_and_nests():
    assert not progress.is_quiet()
    with pk.quiet():
        assert progress.is_quiet()
        assert progress.progress(range(3)).disable
        with pk.quiet(False):                 # an inner block never undoes an outer one
            assert progress.is_quiet()
    assert not progress.is_quiet()
    assert not progress.progress(range(3)).disable


def test_quiet_argument_lasts_for_the_call_only():
    seen = []

    @progress.quiet_option
    def work(x, *, quiet: bool = False):
        seen.append(progress.is_quiet())
        return x

    assert work(1, quiet=True) == 1 and work(2) == 2
    assert seen == [True, False]
    assert not progress.is_quiet()


def test_a_library_command_leaves_bars_on_for_the_rest_of_the_process():
    pk.data("agreement", conditions=["A1"], sentences=5, quiet=True)
    assert not progress.is_quiet()
