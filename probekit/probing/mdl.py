"""Online (prequential) codelength of a selection task (Voita & Titov 2020), as ``--mdl`` computes it.

The training sentences are put in a fixed random order (from the seed); timesteps t_1 < … < t_S = n at
:data:`PERCENTS` % of n, floored as Voita's code does (``int(fraction · n)``). One deviation, only below 1,000
sentences: a timestep that floors to 0 becomes 1 and repeated timesteps are dropped (their code would train on
an empty block). The first t_1 sentences are sent with the
uniform code; for a selection probe the uniform code of a sentence is log₂(its number of candidate words).
For each i ≥ 1 a probe is trained (same kind and hyperparameters as the main probe: the linear probe's λ per
key as it chose them on the whole training split, the MLP's dev-loss model selection) on the first t_i sentences
and codes sentences t_i+1 … t_{i+1}: −log₂ p(target word | sentence), p the probe's softmax over the
sentence's candidate words. Online codelength = uniform code of block 1 + Σ block codes; uniform codelength
= Σ over all n sentences of log₂(word count); compression = uniform / online.
Each task key is coded on the sentences that have a target for it. Codelengths are reported in kbits of
:data:`BITS_PER_KBIT` = 1024 bits, as Voita & Titov's evaluation notebook divides them.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from probekit.probing.selection import Sentences

PERCENTS = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.25, 12.5, 25, 50, 100)
#: bits per reported kbit (Voita & Titov's notebook: codelength / 1024)
BITS_PER_KBIT = 1024


def block_boundaries(n: int, percents=PERCENTS) -> list[int]:
    """Timesteps t_1 … t_S (= n): sentence counts at ``percents`` % of ``n``, strictly increasing."""
    out: list[int] = []
    for p in percents:
        t = min(n, max(1, int(round(p / 100.0, 12) * n)))     # the fraction as their config writes it
        if not out or t > out[-1]:
            out.append(t)
    return out


def subset(data: Sentences, rows) -> Sentences:
    """The chosen sentences (rows of ``index``), sharing ``flat``."""
    rows = torch.as_tensor(np.asarray(rows), dtype=torch.long)
    return Sentences(data.flat, data.index[rows], data.candidate[rows])


def uniform_bits(data: Sentences) -> np.ndarray:
    """[N] log₂ of each sentence's number of candidate words."""
    n = (data.candidate & (data.index >= 0)).sum(1).numpy()
    return np.log2(np.maximum(n, 1))


def target_bits(probe, data: Sentences, targets: np.ndarray) -> np.ndarray:
    """[N, K] −log₂ p(target) under a fitted probe (0 where no target)."""
    logp = probe.predict_log_proba(data)                               # [N, U, K] natural log
    t = np.asarray(targets)
    picked = np.take_along_axis(logp, np.maximum(t, 0)[:, None, :], axis=1)[:, 0, :]
    return np.where(t >= 0, -picked / np.log(2.0), 0.0)


def online_codelength(make_probe: Callable[[], object], train: Sentences, targets: np.ndarray, *,
                      dev: tuple[Sentences, np.ndarray] | None = None, seed: int = 0,
                      percents=PERCENTS) -> dict[str, np.ndarray]:
    """Per key: ``online_bits``, ``uniform_bits``, ``first_block_bits`` [K] and the ``boundaries`` used."""
    targets = np.asarray(targets)
    usable = np.nonzero((targets >= 0).any(1))[0]
    order = usable[np.random.default_rng(seed).permutation(len(usable))]
    bounds = block_boundaries(len(order), percents)
    has = targets[order] >= 0                                           # [n, K]
    uni = uniform_bits(subset(train, order))[:, None] * has             # [n, K]
    online = uni[:bounds[0]].sum(0).astype(float)
    first = online.copy()
    for start, stop in zip(bounds[:-1], bounds[1:]):
        probe = make_probe().fit(subset(train, order[:start]), targets[order[:start]], dev=dev)
        online += target_bits(probe, subset(train, order[start:stop]), targets[order[start:stop]]).sum(0)
    return {"online_bits": online, "uniform_bits": uni.sum(0), "first_block_bits": first,
            "boundaries": np.array(bounds)}
