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


def test_a_probe_fit_reports_its_inner_steps():
    """Long fits tell the bar where they are: every L-BFGS evaluation (λ choice, then the final fit), every batch."""
    from test_linear_probe import noisy

    from probekit.probing.linear import L2_GRID, LinearProbe
    from probekit.probing.selection import SelectionProbe

    train, y = noisy(200, 0)
    seen: list[str] = []
    probe = LinearProbe()
    probe.on_step = seen.append
    probe.fit(train, y)
    assert any(s.startswith(f"choosing λ {len(L2_GRID)}/{len(L2_GRID)}, L-BFGS step") for s in seen)
    assert seen[-1].startswith("fit, L-BFGS step") and len(seen) > len(L2_GRID) + 1
    mlp, steps = SelectionProbe("mlp", epochs=2, batch_size=50), []
    mlp.on_step = steps.append
    mlp.fit(train, y)
    assert steps[0] == "epoch 1/2, sentence 0/200" and steps[-1] == "epoch 2/2, sentence 150/200"


def test_postfix_redraws_at_most_every_interval():
    class Bar:
        disable = False
        texts: list[str] = []

        def set_postfix_str(self, text, refresh=True):
            self.texts.append(text)

    bar = Bar()
    tell = progress.postfix(bar, every=3600)
    for i in range(100):
        tell(f"step {i}")
    assert bar.texts == ["step 0"]


def test_nested_text_bars_in_a_notebook_write_no_cursor_moves(monkeypatch, capsys):
    """Jupyter's text output cannot move the cursor up: nested text bars share one line there."""
    import sys

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    outer = progress.progress(total=2, desc="outer", mininterval=0)
    for _ in progress.progress(range(3), desc="inner", mininterval=0):
        pass
    outer.update(2)
    outer.close()
    err = capsys.readouterr().err
    assert "inner" in err and "outer" in err and "\x1b[A" not in err
