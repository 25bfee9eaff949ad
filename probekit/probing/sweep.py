"""The layer sweep: extract once (through the cache), then train selection probes on every layer.

Layers are 0 (embeddings) … L, plus layer 0 with the position embeddings removed (Lin et al.'s comparison,
reported as probes ``linear-nopos`` / ``mlp-nopos`` at layer 0).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from probekit.core.cache import ActivationStore, get_activations
from probekit.core.intervals import over_examples, paired_difference
from probekit.core.progress import postfix, progress
from probekit.core.encoder import Encoder
from probekit.core.distributed import grid
from probekit.probing.kinds import make
from probekit.probing.selection import Sentences
from probekit.probing.registry import NO_TARGET, ProbingData


def unit_targets(store: ActivationStore, data: ProbingData) -> np.ndarray:
    """Word-index targets → unit positions within each sentence's units ([N, K], −1 where none or truncated)."""
    raw = np.array([ex.meta["targets"] for ex in data.examples], dtype=np.int64).reshape(len(data.examples), -1)
    out = np.full_like(raw, NO_TARGET)
    for i in range(len(data.examples)):
        word_ids = store.word_ids[store.rows(i)]
        pos = {int(w): u for u, w in enumerate(word_ids) if w >= 0}
        for k, w in enumerate(raw[i]):
            if w != NO_TARGET and int(w) in pos:
                out[i, k] = pos[int(w)]
    return out


def sentences(store: ActivationStore, features: np.ndarray, rows: list[int]) -> Sentences:
    """Gather the chosen sentences' word vectors into a compact :class:`Sentences`."""
    spans = [store.rows(i) for i in rows]
    lengths = [s.stop - s.start for s in spans]
    U = max(lengths)
    take = np.concatenate([np.arange(s.start, s.stop) for s in spans])
    flat = torch.from_numpy(np.asarray(features[take], dtype=np.float32))
    index = torch.full((len(rows), U), -1, dtype=torch.long)
    candidate = torch.zeros((len(rows), U), dtype=torch.bool)
    special = store.special[take]
    pos = 0
    for j, n in enumerate(lengths):
        index[j, :n] = torch.arange(pos, pos + n)
        candidate[j, :n] = torch.from_numpy(~special[pos:pos + n])
        pos += n
    return Sentences(flat, index, candidate)


def make_probe(kind: str, *, hidden: int = 128, epochs: int = 8, lr: float = 1e-3, seed: int = 0):
    """A fresh probe of the registered ``kind`` (:mod:`.kinds`): ``linear`` (:class:`~.linear.LinearProbe`,
    L-BFGS to convergence, L2 chosen on the training split; ``epochs``/``lr`` do not apply), ``mlp``
    (:class:`~.selection.MLPProbe`, Adam), ``logreg`` (scikit-learn) or a user's; each takes the options its
    ``__init__`` has."""
    return make(kind, hidden=hidden, epochs=epochs, lr=lr, seed=seed)


def sweep(store: ActivationStore, data: ProbingData, *, probes=("linear", "mlp"), hidden: int = 128,
          epochs: int = 8, lr: float = 1e-3, seed: int = 0, include_nopos: bool = True, seeds: int = 1,
          control: bool = False, mdl: bool = False) -> pd.DataFrame:
    """Accuracy of every probe on every layer and split: tidy rows (layer, probe, split, key…, seed, value,
    ci_low, ci_high — a 95 % bootstrap interval over the sentences, seeded by the run seed).

    ``seeds``: each probe is trained with seeds ``seed … seed+seeds−1`` (data order, initialisation), one row
    per seed. ``control``: the control task (:mod:`.control`) is trained alongside, as extra keys of the same
    probe (same hyperparameters, budget and model selection); rows ``control_accuracy`` and ``selectivity``.
    ``mdl``: online codelength rows on the training split (:mod:`.mdl`), for the control task too.
    ``.attrs["correctness"]``: per (layer, probe, split, seed) the [N, K(+K control)] 0/1/NaN correctness of
    every sentence, for paired comparisons between layers and probes on the same sentences.
    """
    targets = unit_targets(store, data)
    layers = [(l, "") for l in range(store.num_layers + 1)]
    if include_nopos and store.meta.get("no_position"):
        layers.append((0, "-nopos"))
    controls = {}
    if control:
        from probekit.probing.control import control_targets

        controls = {s: control_targets(store, data, targets, seed=seed + s) for s in range(seeds)}
    bar = progress(total=len(layers) * len(probes) * seeds, desc="training probes", unit="probe")
    cells = {f"layer {layer}{suffix} {kind} seed {seed + s}": dict(layer=layer, suffix=suffix, kind=kind, s=s)
             for layer, suffix in layers for kind in probes for s in range(seeds)}
    shared = dict(store=str(store.path), data=data, targets=targets, controls=controls,
                  options=dict(hidden=hidden, epochs=epochs, lr=lr, seed=seed, control=control, mdl=mdl))
    if grid.WORKERS.get() is None:          # here: the bar says what the current fit is doing
        shared["tell"] = postfix(bar)
    try:
        done = grid.run(fit_cell, cells, shared=shared, on_done=lambda key: bar.update(1))
    finally:
        bar.close()
        _OPEN.clear()
    rows, kept = [], {}
    for cell_rows, cell_kept in done.values():
        rows += cell_rows
        kept.update(cell_kept)
    rows += probe_differences(kept, [s for s in data.splits if data.split_indices(s)], data.keys)
    out = pd.DataFrame(rows)
    out.attrs["correctness"] = kept
    return out


_OPEN: dict = {}


def _layer_sets(path: str, layer: int, suffix: str, split_rows: dict):
    """(store, the splits' Sentences of one layer), the last layer's kept in this process (cells come layer by
    layer, so each layer is gathered once per process)."""
    key = (path, layer, suffix)
    if _OPEN.get("key") != key:
        store = _OPEN["store"] if _OPEN.get("path") == path else ActivationStore(path)
        features = store.no_position() if suffix else store.hidden(layer)
        _OPEN.update(key=key, path=path, store=store,
                     sets={s: sentences(store, features, r) for s, r in split_rows.items() if r})
    return _OPEN["store"], _OPEN["sets"]


def fit_cell(layer, suffix, kind, s, store, data, targets, controls, options, tell=None):
    """One probe of the sweep (layer × probe kind × seed): its rows and per-split correctness. A grid cell
    (:mod:`probekit.core.distributed.grid`: on a Ray worker in a session, reading the store from shared storage)."""
    o, K = options, targets.shape[1]
    split_rows = {sp: data.split_indices(sp) for sp in data.splits}
    train_split, dev_split = data.splits[0], (data.splits[1] if len(data.splits) > 1 else None)
    _, sets = _layer_sets(store, layer, suffix, split_rows)
    run_seed, control = o["seed"] + s, o["control"]
    full = np.concatenate([targets, controls[s]], axis=1) if control else targets
    dev = (sets[dev_split], full[split_rows[dev_split]]) if dev_split in sets else None
    probe = make_probe(kind, hidden=o["hidden"], epochs=o["epochs"], lr=o["lr"], seed=run_seed)
    if tell is not None:
        probe.on_step = lambda what, where=f"layer {layer}{suffix} {kind}": tell(f"{where}: {what}")
    probe.fit(sets[train_split], full[split_rows[train_split]], dev=dev)
    base = {"layer": layer, "probe": kind + suffix, "seed": run_seed}
    rows, kept = [], {}
    for split, r in split_rows.items():
        if not r:
            continue
        acc = probe.accuracies(sets[split], full[r])
        right = correctness(probe.predict(sets[split]), full[r])
        kept[(layer, kind + suffix, split, run_seed)] = right
        for k, key in enumerate(data.keys):
            n = int((targets[r, k] >= 0).sum())
            row = {**base, "split": split, **key, "n_sentences": n}
            rows.append({**row, "metric": "accuracy", "value": float(acc[k]),
                         **_ci(over_examples(right[:, k], seed=run_seed, vectorized=True))})
            if control:
                rows.append({**row, "metric": "control_accuracy", "value": float(acc[K + k]),
                             **_ci(over_examples(right[:, K + k], seed=run_seed, vectorized=True))})
                sel = paired_difference(right[:, k], right[:, K + k], seed=run_seed, vectorized=True)
                rows.append({**row, "metric": "selectivity", "value": float(acc[k] - acc[K + k]), **_ci(sel)})
    if o["mdl"]:
        rows += _mdl_rows(kind, sets[train_split], full[split_rows[train_split]], dev, data, K, base, train_split,
                          dict(hidden=o["hidden"], epochs=o["epochs"], lr=o["lr"], seed=run_seed), fitted=probe)
    return rows, kept


def probe_differences(kept: dict, splits, keys) -> list[dict]:
    """``accuracy_difference`` rows: every pair of probe kinds on the same layer, split, key and seed (``linear``
    against ``mlp`` is probe ``linear vs mlp``), a − b bootstrapped paired over the same sentences."""
    rows = []
    runs = sorted({(l, p, s) for l, p, _, s in kept}, key=lambda r: (r[0], r[2]))
    for layer, a, seed in runs:
        for layer_b, b, seed_b in runs:
            same_kind = a.endswith("-nopos") == b.endswith("-nopos")
            if (layer_b, seed_b) != (layer, seed) or not same_kind or not _before(a, b, kept):
                continue
            for split in splits:
                if (layer, a, split, seed) not in kept:
                    continue
                ra, rb = kept[(layer, a, split, seed)], kept[(layer, b, split, seed)]
                for k, key in enumerate(keys):
                    d = paired_difference(ra[:, k], rb[:, k], seed=seed, vectorized=True)
                    rows.append({"layer": layer, "probe": f"{a} vs {b}", "seed": seed, "split": split, **key,
                                 "n_sentences": d.n, "metric": "accuracy_difference", "value": d.estimate,
                                 **_ci(d)})
    return rows


def _before(a: str, b: str, kept: dict) -> bool:
    """``a`` was trained before ``b`` (the pair's order is the order of ``--probes``)."""
    order = list(dict.fromkeys(p for _, p, _, _ in kept))
    return order.index(a) < order.index(b)


def correctness(pred: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """[N, K] float32: 1 where the probe picked the target, 0 where it missed, NaN where the sentence has none."""
    return np.where(targets >= 0, (pred == targets).astype(np.float32), np.float32("nan")).astype(np.float32)


def _ci(interval) -> dict:
    """The interval columns of a results row (its ``n`` is the row's ``n_sentences``)."""
    return {"ci_low": interval.ci_low, "ci_high": interval.ci_high}


def _mdl_rows(kind, train, full, dev, data, K, base, split, options, fitted=None) -> list[dict]:
    """MDL rows of one probe. A probe that chose its own hyperparameters on the training split (the linear
    probe's λ per key) hands them to every block's probe, so the blocks differ from it in their data only."""
    from probekit.probing.mdl import BITS_PER_KBIT, online_codelength

    fresh = getattr(fitted, "with_chosen", None)
    make = fresh if fresh is not None else (lambda: make_probe(kind, **options))
    code = online_codelength(make, train, full, dev=dev, seed=options["seed"])
    out = []
    for k, key in enumerate(data.keys):
        row = {**base, "split": split, **key, "n_sentences": int((full[:, k] >= 0).sum())}
        values = {"uniform_codelength_kbits": code["uniform_bits"][k] / BITS_PER_KBIT,
                  "online_codelength_kbits": code["online_bits"][k] / BITS_PER_KBIT,
                  "compression": code["uniform_bits"][k] / code["online_bits"][k]}
        if full.shape[1] > K:
            values["control_online_codelength_kbits"] = code["online_bits"][K + k] / BITS_PER_KBIT
            values["control_compression"] = code["uniform_bits"][K + k] / code["online_bits"][K + k]
        out += [{**row, "metric": m, "value": float(v)} for m, v in values.items()]
    return out


def activations_for(encoder: Encoder, data: ProbingData, *, pooling: str = "mean", max_length: int | None = None,
                    batch_size: int = 32, dtype: str = "float16", cache_dir=None,
                    no_cache: bool = False) -> ActivationStore:
    """The hidden states of every layer (and layer 0 without positions, where the model has a table), cached."""
    return get_activations(encoder, data.examples, cache_dir=cache_dir, use_cache=not no_cache,
                           hidden=True, no_position=encoder.position_embeddings is not None,
                           pooling=pooling, max_length=max_length, batch_size=batch_size, dtype=dtype)
