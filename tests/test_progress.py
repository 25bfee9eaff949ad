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


def test_transformers_bars_are_off_inside_probekit_and_restored_after(monkeypatch):
    from transformers.utils import logging as hf_logging

    hf_logging.enable_progress_bar()
    with pk.quiet(False):                     # what every library call does: probekit's bars stay on
        assert not progress.is_quiet()
        assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.is_progress_bar_enabled()


def test_notebook_without_ipywidgets_gets_a_text_bar_without_warning(monkeypatch):
    import sys
    import warnings

    from tqdm.std import tqdm as text_tqdm

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)          # import ipywidgets now fails
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bar = progress.progress(range(3), desc="x")
        assert type(bar) is text_tqdm
        assert list(bar) == [0, 1, 2]


def test_outside_a_kernel_is_not_a_notebook():
    assert not progress.in_notebook()
