"""The layer sweep: extract once (through the cache), then train selection probes on every layer.

Layers are 0 (embeddings) … L, plus layer 0 with the position embeddings removed (Lin et al.'s comparison,
reported as probes ``linear-nopos`` / ``mlp-nopos`` at layer 0).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..core.cache import ActivationStore, get_activations
from ..core.progress import progress
from ..core.encoder import Encoder
from .selection import SelectionProbe, Sentences
from .registry import NO_TARGET, ProbingData


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


def sweep(store: ActivationStore, data: ProbingData, *, probes=("linear", "mlp"), hidden: int = 128,
          epochs: int = 8, lr: float = 1e-3, seed: int = 0, include_nopos: bool = True) -> pd.DataFrame:
    """Accuracy of every probe on every layer and split: tidy rows (layer, probe, split, key…, value)."""
    targets = unit_targets(store, data)
    split_rows = {s: data.split_indices(s) for s in data.splits}
    train_split, dev_split = data.splits[0], (data.splits[1] if len(data.splits) > 1 else None)
    layers = [(l, "") for l in range(store.num_layers + 1)]
    if include_nopos and store.meta.get("no_position"):
        layers.append((0, "-nopos"))
    rows = []
    bar = progress(total=len(layers) * len(probes), desc="training probes", unit="probe")
    for layer, suffix in layers:
        features = store.no_position() if suffix else store.hidden(layer)
        sets = {s: sentences(store, features, r) for s, r in split_rows.items() if r}
        for kind in probes:
            probe = SelectionProbe(kind=kind, hidden=hidden, epochs=epochs, lr=lr, seed=seed)
            dev = (sets[dev_split], targets[split_rows[dev_split]]) if dev_split in sets else None
            probe.fit(sets[train_split], targets[split_rows[train_split]], dev=dev)
            for split, r in split_rows.items():
                if not r:
                    continue
                acc = probe.score(sets[split], targets[r])
                for k, key in enumerate(data.keys):
                    rows.append({"layer": layer, "probe": kind + suffix, "split": split, **key,
                                 "metric": "accuracy", "value": float(acc[k]),
                                 "n_sentences": int((targets[r, k] >= 0).sum())})
            bar.update(1)
    bar.close()
    return pd.DataFrame(rows)


def activations_for(encoder: Encoder, data: ProbingData, *, pooling: str = "mean", max_length: int | None = None,
                    batch_size: int = 32, dtype: str = "float16", cache_dir=None,
                    no_cache: bool = False) -> ActivationStore:
    """The hidden states of every layer (and layer 0 without positions, where the model has a table), cached."""
    return get_activations(encoder, data.examples, cache_dir=cache_dir, use_cache=not no_cache,
                           hidden=True, no_position=encoder.position_embeddings is not None,
                           pooling=pooling, max_length=max_length, batch_size=batch_size, dtype=dtype)
