"""probekit on a local Ray cluster of 2 CPUs (one cluster for the session): sharded extraction gives the bytes
one process writes, for 1 and 2 workers; grid tasks are written once under their key, also when a worker dies.

Skipped when Ray is not installed, except under CI=true, where the extra is installed and these must run."""
from __future__ import annotations

import filecmp
import os

import numpy as np
import pandas as pd
import pytest

from conftest import in_ci  # noqa: E402

if not in_ci():
    pytest.importorskip("ray", reason='Ray is not installed (pip install "probekit[ray]")')
import ray  # noqa: E402

from probekit.core.distributed import grid  # noqa: E402
from probekit.core.distributed.session import session  # noqa: E402
from test_faithfulness_wp import ctx_of, setup  # noqa: E402,F401  (setup: the tiny classifier, a module fixture)


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster with 2 CPUs, shared by every test here (started once: starting one takes seconds)."""
    import sys

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])   # the workers cannot import the tests
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    if started:
        ray.shutdown()


def _corpus(path, n=70):
    rng = np.random.default_rng(0)
    words = "the old teacher walked to a village school every morning while children sang loudly".split()
    path.write_text("\n".join(" ".join(rng.choice(words, rng.integers(2, 14))) for _ in range(n)) + "\n")
    return path


def _same_folders(a, b):
    names = sorted(p.name for p in a.iterdir() if p.name != "config.json")   # the run record: timings, paths
    assert names == sorted(p.name for p in b.iterdir() if p.name != "config.json")
    _, mismatch, errors = filecmp.cmpfiles(a, b, [n for n in names if (a / n).is_file()], shallow=False)
    return mismatch + errors


def test_sharded_extraction_writes_the_single_process_bytes(ray_cluster, tiny_model_dirs, tmp_path):
    import probekit as pk

    corpus = _corpus(tmp_path / "c.txt")
    runs = {}
    options = dict(model=str(tiny_model_dirs["bert"]), attention=True, batch_size=4, quiet=True)
    for name, workers in (("local", None), ("one", 1)):
        with session(None if workers is None else "auto", workers=workers):
            result = pk.extract(corpus, cache_dir=tmp_path / f"cache-{name}", **options)
        runs[name] = result.write(tmp_path / name)
        runs[name + "-cache"] = next((tmp_path / f"cache-{name}").iterdir())
    # --ray auto: a worker per CPU of the cluster (2)
    result = pk.extract(corpus, cache_dir=tmp_path / "cache-two", ray="auto", **options)
    assert result.record["arguments"]["ray"] == "auto"
    runs["two"] = result.write(tmp_path / "two")
    entries = list((tmp_path / "cache-two").iterdir())
    assert len(entries) == 1
    runs["two-cache"] = entries[0]
    # 70 sentences in batches of 4: 2 windows of 16 batches, so the 2-worker run really shards
    assert _same_folders(runs["local"], runs["one"]) == []
    assert _same_folders(runs["one"], runs["two"]) == []
    assert _same_folders(runs["local-cache"], runs["two-cache"]) == []
    assert runs["local-cache"].name == runs["two-cache"].name


def _square(x, calls):
    with open(calls, "a") as f:
        f.write(f"{x}\n")
    if x == 3 and not os.path.exists(calls + ".died"):
        open(calls + ".died", "w").close()
        os._exit(1)                          # the worker dies mid-task, once: Ray retries the task
    return {"x": x, "square": x * x}


def test_grid_tasks_are_written_once_under_their_key_and_retried_when_a_worker_dies(ray_cluster, tmp_path):
    calls = str(tmp_path / "calls")
    cells = {f"x={x}": dict(x=x, calls=calls) for x in range(5)}
    with session("auto", workers=2):
        out = grid.run(_square, cells, store=tmp_path / "store")
    assert out == {k: {"x": c["x"], "square": c["x"] ** 2} for k, c in cells.items()}
    assert os.path.exists(calls + ".died")
    assert sorted(open(calls).read().split()) == ["0", "1", "2", "3", "3", "4"]   # 3 ran twice: the retry
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == sorted(f"{grid.file_key(k)}.pkl" for k in cells)
    with session("auto", workers=2):                 # a rerun reads the written results, computes nothing
        again = grid.run(_square, cells, store=tmp_path / "store")
    assert again == out
    assert len(open(calls).read().split()) == 6


def test_grid_without_a_session_runs_here_in_key_order(tmp_path):
    out = grid.run(lambda x: x + 1, {"a": dict(x=1), "b": dict(x=2)})
    assert list(out.items()) == [("a", 2), ("b", 3)]


@pytest.mark.parametrize("experiment, options", [("seeds", {"seeds": 3}),
                                                 ("e2e-adversary", {"lambdas": (0.0, 0.1, 1.0), "patience": 2})])
def test_retrained_seeds_and_lambdas_on_two_workers_give_the_same_tables(ray_cluster, setup,  # noqa: F811
                                                                          experiment, options, monkeypatch):
    from probekit.evaluation.wiegreffe_pinter import common as wp_common
    from probekit.evaluation.experiments import get

    monkeypatch.setattr(wp_common, "STACK_ADVERSARY", True)     # the λ grid's stacked path (off by default)

    here = get(experiment).build(options).run(ctx_of(setup, **options)).tables[experiment]
    with session("auto", workers=2):
        there = get(experiment).build(options).run(ctx_of(setup, **options)).tables[experiment]
    pd.testing.assert_frame_equal(here.drop(columns="value"), there.drop(columns="value"))
    np.testing.assert_allclose(here["value"].to_numpy(float), there["value"].to_numpy(float), rtol=1e-5,
                               atol=1e-7)


def test_probe_grid_on_ray_writes_the_same_results(ray_cluster, tiny_model_dirs, tmp_path):
    """Layers × probes × seeds as Ray tasks (and the extraction sharded): the same results.csv as here."""
    import probekit as pk

    corpus = _corpus(tmp_path / "c.txt", n=40)
    opts = dict(corpus=str(corpus), n=[1], probes=["linear", "mlp"], epochs=1, seeds=2, quiet=True,
                model=str(tiny_model_dirs["bert"]))
    here = pk.probe("nth_token", cache_dir=tmp_path / "c1", **opts).write(tmp_path / "here")
    there = pk.probe("nth_token", cache_dir=tmp_path / "c2", ray="auto", **opts).write(tmp_path / "there")
    frame = pd.read_csv(here / "results.csv")
    assert len(frame) and set(frame["seed"]) == {0, 1} and set(frame["probe"]) >= {"linear", "mlp"}
    assert (here / "results.csv").read_bytes() == (there / "results.csv").read_bytes()
