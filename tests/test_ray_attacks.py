"""Attack retrainings as Ray tasks on the local 2-CPU cluster (``ray_cluster`` of test_distributed): the same
table as one after another, each setting's rows once although a worker dies mid-retraining; and an unreachable
``--ray ADDRESS`` refused in one line before anything is written.

The cluster tests are skipped when Ray is not installed, except under CI=true, where they must run."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import probekit as pk
from conftest import in_ci
from probekit.attacks.base import ATTACKS, Attack
from probekit.attacks.multiple_choice import perturbations as mc
from probekit.core.distributed.session import reachable, session
from probekit.core.errors import UserError

if in_ci():
    import ray  # noqa: F401  (under CI the extra is installed: an ImportError fails the run)

#: the test process: a worker is any other process
DRIVER = os.getpid()


class DiesOnce(Attack):
    """P-Shuffle, except that the first time it runs in a Ray worker, the worker dies (its task is retried)."""

    name, stage, models = "Dies-Once-Shuffle", "training", frozenset({"multiple-choice"})
    marker = ""

    def apply(self, items, seed=0):
        with open(self.marker + ".calls", "a") as f:
            f.write(f"{os.getpid()}\n")
        if os.getpid() != DRIVER and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        return mc.p_shuffle(items, seed)


def _items(n=4):
    from test_attacks import _items as items

    out = items(n)
    for it in out:
        it.passage = "The old teacher walked to the village school."
    return out


def test_unanswerable_retrainings_on_ray_give_the_same_table(tiny_model_dirs, tmp_path, monkeypatch):
    if not in_ci():
        pytest.importorskip("ray", reason='Ray is not installed (pip install "probekit[ray]")')
    import ray

    from probekit.classifiers.multiple_choice.train import build_model

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])   # the workers cannot import the tests
    DiesOnce.marker = str(tmp_path / "died")
    monkeypatch.setitem(ATTACKS, DiesOnce.name, DiesOnce)
    model = build_model(str(tiny_model_dirs["bert"]), max_length=64, seed=0)
    items = _items()
    settings = ["P-Shuffle", DiesOnce.name, "Q-Remove"]
    kw = dict(train=items, dev=items, unanswerable=settings, epochs=1, max_length=64, draws=1,
              attacks=["AddSent2Pas-Shuffle"], quiet=True)
    here = pk.attack(model, items, checkpoints=tmp_path / "here", **kw)
    started = not ray.is_initialized()
    try:
        with session("auto", workers=2, num_cpus=2):
            there = pk.attack(model, items, checkpoints=tmp_path / "there", ray="auto", **kw)
    finally:
        if started and ray.is_initialized():
            ray.shutdown()
    assert there.record["arguments"]["ray"] == "auto"
    pd.testing.assert_frame_equal(here.frame, there.frame)
    assert here.table.equals(there.table)
    trained = there.frame[there.frame["group"] == "un-answerable training"]
    assert list(trained["setting"]) == [f"trained on {s}" for s in settings]     # each setting once, in order
    for run in ("here", "there"):
        assert sorted(p.name for p in (tmp_path / run).iterdir()) == sorted(settings)
    # the worker died in the dying setting's task, which Ray ran again: train and dev drawn twice there, once
    # in the driver's run here
    assert os.path.exists(DiesOnce.marker)
    calls = Path(DiesOnce.marker + ".calls").read_text().split()
    assert calls.count(str(DRIVER)) == 2 and len(calls) == 2 + 1 + 2


def test_unreachable_ray_address_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    """No Ray needed: the address is checked before ``ray.init``, which retries an unreachable one for minutes."""
    from probekit.attack import main

    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "a fine film", "label": "pos"}\n')
    for address in ("127.0.0.1:1", "no-such-host.invalid:6379", "ray://127.0.0.1:1", "nonsense"):
        start = time.perf_counter()
        rc = main(["--classifier", str(tmp_path / "clf"), "--data", str(data), "--out", str(tmp_path / "o"),
                   "--ray", address, "--quiet"])
        err = capsys.readouterr().err
        lines = [l for l in err.splitlines() if l.strip()]
        assert rc == 2 and len(lines) == 1 and lines[0].startswith(f"probekit: error: --ray {address}:"), err
        assert time.perf_counter() - start < 20
        assert not (tmp_path / "o").exists()
    with pytest.raises(UserError, match="cannot reach"):
        reachable("127.0.0.1:1")
