"""The linear selection probe (``--probes linear``): Lin et al.'s per-word two-class objective, fitted to
convergence, with its L2 strength chosen on the training split.

One weight vector and bias per task key score every word (``w·h + b``); the probe picks the argmax over the
sentence's real words (specials and padding excluded), and p(word) for MDL is the softmax of the scores over
those words. Training minimises, per key, the binary cross-entropy of "is this the target word?" summed over
the candidate words of the sentences with a target, divided by their number, plus λ‖w‖² (Lin et al.'s 2-way
classifier per word; logistic regression). The loss is convex, so it is minimised full-batch with L-BFGS from
zero rather than with a few Adam epochs under input dropout: that gradient-trained probe (still
``SelectionProbe(kind="linear")``) was under-trained, below scikit-learn's ``LogisticRegression`` at every layer.

λ is chosen per key from :data:`L2_GRID` on a held-out part of the **training** sentences (``holdout``, drawn
from the seed): each λ, strongest first and warm-started from the previous, is fitted on the rest; the one with
the highest held-out accuracy wins (ties: lowest held-out loss, then the stronger λ). The probe is then refitted
on the whole training split with the chosen λ. ``fit``'s ``dev`` argument is never read, so dev and test
accuracies are not used for any choice.
"""
from __future__ import annotations

import numpy as np
import torch

from probekit.probing.base import SelectionProbeBase, as_targets, register
from probekit.probing.selection import Sentences

#: Candidate L2 strengths λ (penalty λ‖w‖² on the per-sentence loss), strongest first.
L2_GRID = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4)


class _Words:
    """The candidate words of some sentences as a dense design: ``x`` [W, D], their sentence ``sent`` [W] and
    unit position ``unit`` [W], ``label`` [W, K] (1 = the target), ``use`` [W, K] (the sentence has a target)."""

    def __init__(self, data: Sentences, y: torch.Tensor, rows: torch.Tensor | None = None):
        mask = data.candidate & (data.index >= 0)
        if rows is not None:
            keep = torch.zeros(mask.shape[0], dtype=torch.bool)
            keep[rows] = True
            mask = mask & keep.unsqueeze(1)
        self.sent, self.unit = torch.nonzero(mask, as_tuple=True)
        self.x = data.flat[data.index[self.sent, self.unit]].float()
        t = y[self.sent]                                                  # [W, K]
        self.label = (self.unit.unsqueeze(1) == t).float()
        self.use = (t >= 0).float()
        sentences = torch.zeros(mask.shape[0], dtype=torch.bool)
        sentences[self.sent] = True
        self.n = ((y >= 0) & sentences.unsqueeze(1)).sum(0).clamp(min=1).float()   # [K] sentences with a target
        self.y = y


@register
class LinearProbe(SelectionProbeBase):
    """scikit-learn conventions (:class:`~.base.SelectionProbeBase`). ``l2``: a fixed λ, one for all keys or one
    per key (no selection); ``None`` chooses it from ``grid``. Fitted: ``theta_`` [K, D + 1] (weights, then the
    bias), ``l2_`` [K] the λ used for each key, ``holdout_accuracy_`` [len(grid), K] (grid strongest first;
    None: no choice was made)."""

    name = "linear"
    kind = "linear"
    summary = "w·h + b per word, binary cross-entropy + λ‖w‖², L-BFGS to convergence, λ chosen on train"
    paper = "Lin et al. (2019), fitted to convergence"

    def __init__(self, l2: float | None = None, grid=L2_GRID, holdout: float = 0.2, max_iter: int = 200,
                 select_iter: int = 100, tol: float = 1e-5, min_holdout: int = 20, seed: int = 0):
        self.l2, self.grid, self.holdout, self.max_iter = l2, grid, holdout, max_iter
        self.select_iter = select_iter
        self.tol, self.min_holdout, self.seed = tol, min_holdout, seed

    # -- the objective ---------------------------------------------------------------------------------------
    @staticmethod
    def _losses(theta: torch.Tensor, words: _Words) -> torch.Tensor:
        """[K] binary cross-entropy summed over each key's candidate words, per sentence with a target."""
        s = words.x @ theta[:, :-1].T + theta[:, -1]
        bce = torch.nn.functional.binary_cross_entropy_with_logits(s, words.label, reduction="none")
        return (bce * words.use).sum(0) / words.n

    def _minimise(self, words: _Words, lam: torch.Tensor, theta0: torch.Tensor, max_iter: int,
                  stage: str = "fit") -> torch.Tensor:
        """θ minimising Σ_k loss_k + λ_k‖w_k‖² (keys are independent: the sum separates), from ``theta0``."""
        theta = theta0.clone().requires_grad_()
        calls = [0]
        opt = torch.optim.LBFGS([theta], lr=1, max_iter=max_iter, history_size=20, tolerance_grad=self.tol,
                                tolerance_change=1e-12, line_search_fn="strong_wolfe")

        def closure():
            calls[0] += 1
            if self.on_step is not None:
                self.on_step(f"{stage}, L-BFGS step {calls[0]}")
            opt.zero_grad()
            w = theta[:, :-1]
            loss = (self._losses(theta, words) + lam * (w * w).sum(1)).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return theta.detach()

    # -- fitting ---------------------------------------------------------------------------------------------
    def fit(self, data: Sentences, targets: np.ndarray, dev=None):
        """Train on ``targets`` [N, K] (unit positions, −1 = none). ``dev`` is accepted and never read."""
        y = torch.as_tensor(as_targets(targets), dtype=torch.long)
        K, D = y.shape[1], data.flat.shape[1]
        zero = torch.zeros(K, D + 1)
        self.holdout_accuracy_ = None
        if self.l2 is not None or len(self.grid) == 1:
            fixed = np.asarray(self.l2 if self.l2 is not None else self.grid[0], dtype=float)
            lam, start = np.broadcast_to(fixed, (K,)).copy(), zero
        else:
            lam, start = self._select(data, y, zero)
        self.l2_ = lam
        self.theta_ = self._minimise(_Words(data, y), torch.as_tensor(lam, dtype=torch.float32), start,
                                     self.max_iter)
        return self

    def _select(self, data: Sentences, y: torch.Tensor, zero: torch.Tensor):
        """Per key, the λ of the grid with the best held-out accuracy on a part of the training sentences."""
        K = y.shape[1]
        grid = sorted(tuple(self.grid), reverse=True)             # strongest first: each fit warm-starts the next
        usable = torch.nonzero((y >= 0).any(1)).squeeze(1)
        n_out = int(round(len(usable) * self.holdout))
        if n_out < self.min_holdout or len(usable) - n_out < 1:
            return np.full(K, grid[0]), zero                # too little data to hold any out: the strongest λ
        perm = usable[torch.randperm(len(usable), generator=torch.Generator().manual_seed(self.seed))]
        fit_part, held = _Words(data, y, perm[n_out:]), _Words(data, y, perm[:n_out])
        held_y = y[perm[:n_out]]
        held_data = Sentences(data.flat, data.index[perm[:n_out]], data.candidate[perm[:n_out]])
        acc = np.zeros((len(grid), K))
        loss = np.zeros((len(grid), K))
        solutions, theta = [], zero
        for g, lam in enumerate(grid):
            theta = self._minimise(fit_part, torch.full((K,), lam), theta, self.select_iter,
                                   stage=f"choosing λ {g + 1}/{len(grid)}")
            solutions.append(theta)
            with torch.no_grad():
                acc[g] = np.nan_to_num(_accuracy(_predict(theta, held_data), held_y.numpy()), nan=0.0)
                loss[g] = self._losses(theta, held).numpy()
        # highest accuracy, then lowest loss, then the stronger λ (earlier in the grid)
        best = [min(range(len(grid)), key=lambda g: (-acc[g, k], loss[g, k], g)) for k in range(K)]
        self.holdout_accuracy_ = acc
        start = torch.stack([solutions[b][k] for k, b in enumerate(best)])
        return np.array([grid[b] for b in best]), start

    def with_chosen(self, **options) -> "LinearProbe":
        """A fresh probe with the λ per key this fitted one chose: the same hyperparameters, no new selection
        (what each MDL block trains with, as Voita & Titov use one setting for every block)."""
        return LinearProbe(l2=self.l2_, max_iter=self.max_iter, tol=self.tol, seed=self.seed, **options)

    # -- prediction ------------------------------------------------------------------------------------------
    def predict(self, data: Sentences) -> np.ndarray:
        """[N, K]: the unit position each probe picks in each sentence."""
        return _predict(self.theta_, data)

    @torch.no_grad()
    def predict_log_proba(self, data: Sentences) -> np.ndarray:
        """[N, U, K] log-probability of each word being the target (softmax of the scores over its words)."""
        return torch.log_softmax(_scores(self.theta_, data), dim=1).numpy()


@torch.no_grad()
def _scores(theta: torch.Tensor, data: Sentences) -> torch.Tensor:
    """[N, U, K] scores, −inf where a unit may not be picked (each word scored once, then gathered)."""
    flat = data.flat.float() @ theta[:, :-1].T + theta[:, -1]
    return flat[data.index.clamp(min=0)].masked_fill(~(data.candidate & (data.index >= 0)).unsqueeze(-1),
                                                      float("-inf"))


def _predict(theta: torch.Tensor, data: Sentences) -> np.ndarray:
    return _scores(theta, data).argmax(1).numpy()


def _accuracy(pred: np.ndarray, targets: np.ndarray) -> np.ndarray:
    has = targets >= 0
    n = has.sum(0)
    correct = ((pred == targets) & has).sum(0)
    return np.where(n > 0, correct / np.maximum(n, 1), np.nan)
