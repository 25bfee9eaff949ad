"""Fixed unit vectors for training a head without running the model again.

:class:`Features` holds every unit vector of a split in one flat tensor (plus a zero row for padding) and,
per example, which rows are its units in order, so a batch is one gather. Word-level vectors of an encoder come
from the activation cache (one model pass per data set and model, ever); token-level vectors and ``--encoder
none`` (a table lookup) are computed in memory.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Features:
    flat: torch.Tensor        # [R + 1, D]; row R is zeros (padding and gaps)
    index: torch.Tensor       # [N, U_max] rows of each example's units (R where there is none)
    lengths: torch.Tensor     # [N] units per example (up to its last real unit)
    cls: torch.Tensor         # [N] row of each example's [CLS] vector (R when there is none)
    truncated: int = 0
    cache: str | None = None

    def __len__(self) -> int:
        return len(self.index)

    @property
    def pad_row(self) -> int:
        return len(self.flat) - 1

    def to(self, device) -> "Features":
        if self.flat.device == torch.device(device):
            return self
        return Features(self.flat.to(device), self.index, self.lengths, self.cls, self.truncated, self.cache)

    def batch(self, idx: torch.Tensor, *, units: bool = True):
        """(units [B, U, D] float32, mask [B, U], cls [B, D] float32) of examples ``idx``; with ``units=False``
        the units are left out (None), for the cls head."""
        idx = torch.as_tensor(idx)
        width = max(int(self.lengths[idx].max()), 1)
        rows = self.index[idx, :width].to(self.flat.device)
        cls = self.flat[self.cls[idx].to(self.flat.device)].float()
        return (self.flat[rows].float() if units else None), rows != self.pad_row, cls

    def float(self) -> "Features":
        """The same features with float32 storage (one conversion instead of one per batch)."""
        if self.flat.dtype == torch.float32:
            return self
        return Features(self.flat.float(), self.index, self.lengths, self.cls, self.truncated, self.cache)

    @classmethod
    def from_lists(cls, flat: torch.Tensor, per_example: list[np.ndarray], cls_rows: list[int], **kw) -> "Features":
        """``per_example[i]``: row of unit position u (−1 for a gap); ``cls_rows[i]``: −1 for none."""
        pad = len(flat)
        flat = torch.cat([flat, torch.zeros(1, flat.shape[1], dtype=flat.dtype)])
        lengths = torch.tensor([len(r) for r in per_example], dtype=torch.long)
        index = torch.full((len(per_example), max(int(lengths.max()), 1) if len(per_example) else 1), pad,
                           dtype=torch.long)
        for i, r in enumerate(per_example):
            r = np.where(r < 0, pad, r)
            index[i, :len(r)] = torch.from_numpy(r.astype(np.int64))
        cls_t = torch.tensor([pad if c < 0 else c for c in cls_rows], dtype=torch.long)
        return cls(flat, index, lengths, cls_t, **kw)


def cached_features(clf, examples, *, cache_dir=None, use_cache=True, dtype="float16", batch_size=32) -> Features:
    """Word-level vectors of ``clf.layer`` through ``core.cache.get_activations`` (a cache hit runs no model)."""
    from probekit.core.cache import get_activations

    store = get_activations(clf.source, examples, cache_dir=cache_dir, use_cache=use_cache, hidden=True,
                            max_length=clf.max_length, batch_size=batch_size, dtype=dtype)
    flat = torch.from_numpy(np.array(store.hidden(clf.layer)))
    special, word_ids = store.special, store.word_ids
    per_example, cls_rows = [], []
    for i in range(len(store)):
        rows = store.rows(i)
        sp = special[rows]
        real = np.flatnonzero(~sp)
        wid = word_ids[rows][real]
        pos = np.full(int(wid.max()) + 1 if len(wid) else 0, -1, dtype=np.int64)
        pos[wid] = rows.start + real
        per_example.append(pos)
        first_special = np.flatnonzero(sp)
        cls_rows.append(int(rows.start + first_special[0]) if len(first_special) and first_special[0] == 0 else -1)
    return Features.from_lists(flat, per_example, cls_rows, truncated=int(store.meta.get("n_truncated", 0)),
                               cache=None if not use_cache else str(store.path))


@torch.no_grad()
def live_features(clf, examples, *, batch_size=32) -> Features:
    """Unit vectors from the classifier's own ``units`` (token level, or the input embeddings for ``none``)."""
    examples = list(examples)
    chunks, per_example, cls_rows = [], [], []
    truncated, total = 0, 0
    for start in range(0, len(examples), batch_size):
        encoded = clf.tokenize(examples[start:start + batch_size], warn=start == 0)
        truncated += sum(e.truncated for e in encoded)
        batch = clf.collate(encoded)
        batch.pop("words")
        units, mask, cls = clf.units(**batch)
        units, mask, cls = units.float().cpu(), mask.cpu(), cls.float().cpu()
        for b in range(len(encoded)):
            real = np.flatnonzero(mask[b].numpy())
            n = int(real[-1]) + 1 if len(real) else 0
            chunks.append(units[b, :n])
            pos = np.full(n, -1, dtype=np.int64)
            pos[real] = total + real
            per_example.append(pos)
            total += n
            if clf.encoder is not None:
                chunks.append(cls[b:b + 1])
                cls_rows.append(total)
                total += 1
            else:
                cls_rows.append(-1)
    dim = clf.head.dim
    flat = torch.cat(chunks) if chunks else torch.zeros(0, dim)
    return Features.from_lists(flat, per_example, cls_rows, truncated=truncated)
