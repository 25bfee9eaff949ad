"""What the Wiegreffe & Pinter experiments share: fixed features, base α and predictions, and head training.

All four retrain pooling heads over FIXED unit vectors (Wiegreffe & Pinter §3–§5): on ``ctx.train``, keeping the
best ``ctx.dev`` epoch (``classify.train.fit_head``: accuracy, then loss), evaluated on ``ctx.examples``. For an
encoder trained from scratch (``retrains_whole``) all four train whole models instead, as the paper did
(:func:`retrained`, ``wp_whole``). The
vectors, labels, and the base head's α and probabilities on every split are computed once per Context and kept
in ``ctx.options["_shared"]`` under ``wp:``-prefixed keys, so every retraining (uniform, seeds, diagnostic,
adversary) reuses them. The e2e adversary leaves its heads there (``wp:adversary``) for the diagnostic's
"adversary weights" row, and the seeds experiment its median JSD (``wp:seed_jsd``) for the adversary's figure.

Training options are the base classifier's: its head dimensions and dropout (``classifier.options``), classify's
frozen learning rate, weight decay and warm-up, ``ctx.batch_size`` and ``ctx.option("epochs")``.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import torch

from probekit.classifiers.features import Features
from probekit.classifiers.pooling import PoolingHead
from probekit.core.threads import one_thread

SHARED = "_shared"


def shared(ctx) -> dict:
    """The Context's cache shared by experiments (``ctx.options["_shared"]``; the runner never reads it)."""
    return ctx.options.setdefault(SHARED, {})


def skip_reason(ctx) -> str:
    """Why a Wiegreffe & Pinter experiment cannot run here ("" when it can)."""
    if getattr(ctx.source, "kind", "") != "pooling":      # first: no --train/--dev makes this one apply
        return ("needs the classifier's attention-pooling α (--attention pooling): the retrained heads are "
                "attention-pooling heads over the fixed hidden states")
    if ctx.train is None or ctx.dev is None:
        return ("needs --train and --dev (Wiegreffe & Pinter retrain the head on training data and select on "
                "dev, never on the evaluation data)")
    return ""


def derived_seed(ctx, salt: int, i: int = 0) -> int:
    """A training seed from the run's seed, an experiment salt and an index (same run seed → same seeds)."""
    return int(np.random.default_rng([int(ctx.seed), salt, i]).integers(2 ** 31 - 1))


@dataclass
class Split:
    """One split's fixed vectors, labels (None when unlabelled) and the base head's outputs on it."""

    feats: Features
    y: np.ndarray | None
    alpha: torch.Tensor       # [N, W] base α, aligned with feats.index (0 on padding)
    probs: torch.Tensor       # [N, C] base class probabilities (float64)


def labels_of(examples, labels, split: str):
    from probekit.classifiers.classify import label_ids

    if not examples or not all("label" in ex.meta for ex in examples):
        return None
    return label_ids(examples, labels, split)


@torch.no_grad()
def head_outputs(head, feats: Features, *, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(α [N, W] float64 aligned with ``feats.index``, probabilities [N, C] float64) of a pooling head in eval
    mode (no dropout), batched."""
    was = head.training
    head.eval()
    feats = feats.to(next(head.parameters()).device)
    N, W = feats.index.shape
    alpha = torch.zeros(N, W, dtype=torch.float64)
    probs = []
    with one_thread():
        for start in range(0, N, batch_size):
            idx = torch.arange(start, min(start + batch_size, N))
            units, mask, cls = feats.batch(idx)
            logits, weights, _ = head(units, mask, cls)
            alpha[idx, :weights.shape[1]] = weights.double().cpu()
            probs.append(torch.softmax(logits.double(), -1).cpu())
    head.train(was)
    return alpha, torch.cat(probs) if probs else torch.zeros(0, head.n_classes, dtype=torch.float64)


def data(ctx) -> dict[str, Split]:
    """``{"train", "dev", "eval"}`` → :class:`Split` of the base classifier, computed once per Context."""
    cache = shared(ctx)
    if "wp:data" not in cache:
        from probekit.evaluation.source import fixed_features

        clf = ctx.classifier
        feats = {name: fixed_features(clf, exs, batch_size=ctx.batch_size, cache_dir=ctx.cache_dir,
                                      no_cache=ctx.no_cache).float()
                 for name, exs in (("train", ctx.train), ("dev", ctx.dev))}
        feats["eval"] = getattr(ctx.source, "features", None)
        if feats["eval"] is None:
            feats["eval"] = fixed_features(clf, ctx.examples, batch_size=ctx.batch_size, cache_dir=ctx.cache_dir,
                                           no_cache=ctx.no_cache).float()
        examples = {"train": ctx.train, "dev": ctx.dev, "eval": ctx.examples}
        out = {}
        for name, f in feats.items():
            f = f.float().to("cpu")
            alpha, probs = head_outputs(clf.head, f)
            out[name] = Split(f, labels_of(examples[name], clf.labels, name), alpha, probs)
        if out["train"].y is None or out["dev"].y is None:
            from probekit.core.errors import UserError

            raise UserError("--train and --dev need a label on every example for the Wiegreffe & Pinter tests")
        cache["wp:data"] = out
    return cache["wp:data"]


def train_options(ctx, seed: int) -> dict:
    """``fit_head`` options: classify's frozen defaults, the run's batch size and ``--epochs``."""
    from probekit.classifiers.classify import DEFAULT_LR, DEFAULT_WEIGHT_DECAY, classify

    sig = inspect.signature(classify).parameters
    return dict(epochs=int(ctx.option("epochs")), lr=DEFAULT_LR["frozen"], batch_size=int(ctx.batch_size),
                weight_decay=DEFAULT_WEIGHT_DECAY, warmup=sig["warmup"].default, seed=int(seed))


def head_options(ctx) -> dict:
    opts = getattr(ctx.classifier, "options", {}) or {}
    return {"dropout": float(opts.get("dropout", 0.1)), "attention_dim": int(opts.get("attention_dim", 128))}


def build(factory, seed: int):
    """A head built under ``torch.manual_seed(seed)`` without touching the global generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def fit(ctx, head, train: Split | Features, dev: Split | Features, seed: int, y_train=None, y_dev=None):
    """Train ``head`` with ``classify.train.fit_head`` (best dev epoch kept), global RNG state restored."""
    from probekit.classifiers.classify import fit_head

    tf = train.feats if isinstance(train, Split) else train
    df = dev.feats if isinstance(dev, Split) else dev
    y_train = train.y if y_train is None else y_train
    y_dev = dev.y if y_dev is None else y_dev
    with torch.random.fork_rng(devices=[]), one_thread():
        history = fit_head(head, tf, y_train, df, y_dev, device=ctx.device, **train_options(ctx, seed))
    head.to("cpu").eval()
    return history


def retrained(ctx, head, seed: int, names=("eval",)) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(α, probabilities) on each split of ``names`` after retraining with ``head``: the head alone over the fixed
    vectors, or, for a classifier that retrains whole (an encoder trained from scratch: cheap, and what the paper
    did), a fresh model with this head trained end to end (``classify.scratch_train.retrain``)."""
    clf = ctx.classifier
    if not getattr(clf, "retrains_whole", False):
        fit(ctx, head, data(ctx)["train"], data(ctx)["dev"], seed)
        return [head_outputs(head, data(ctx)[n].feats) for n in names]
    from probekit.classifiers.scratch_train import retrain
    from probekit.evaluation.source import fixed_features

    with torch.random.fork_rng(devices=[]):
        model = retrain(clf, head, ctx.train, ctx.dev, seed=seed, batch_size=int(ctx.batch_size),
                        epochs=ctx.options.get("epochs"))
    examples = {"train": ctx.train, "dev": ctx.dev, "eval": ctx.examples}
    return [head_outputs(model.head, fixed_features(model, examples[n], batch_size=ctx.batch_size).to("cpu"))
            for n in names]


#: train several heads of one experiment stacked into one model (``classify.stacked``); False trains them one
#: after another (the reference the stacked path is tested and benchmarked against)
STACK = True
#: the e2e adversary's λ grid stacked too: off by default, since its stop rule (no lower training loss for
#: ``patience`` epochs) can turn float-rounding differences into a different stopping epoch over up to 80 epochs
#: (seen on RT), and a stacked run must give the numbers of one-at-a-time training
STACK_ADVERSARY = False


def retrained_many(ctx, heads: list, seeds: list[int], names=("eval",)) -> list[list[tuple]]:
    """:func:`retrained` for several attention heads, one per seed, stacked into one model when they retrain over
    the fixed vectors (same numbers as one at a time, up to float rounding; in a Ray session, one stack per
    worker); per head, its (α, probabilities) on each split of ``names``."""
    if not STACK or getattr(ctx.classifier, "retrains_whole", False) or len(heads) < 2:
        return [retrained(ctx, h, s, names) for h, s in zip(heads, seeds)]
    from probekit.core.distributed import grid

    tr, dv = data(ctx)["train"], data(ctx)["dev"]
    opts = dict(train_options(ctx, 0), device=ctx.device)
    opts.pop("seed")
    cells = {f"seeds {[seeds[i] for i in g]}": dict(heads=[heads[i] for i in g], seeds=[seeds[i] for i in g])
             for g in grid.groups(len(heads))}
    done = grid.run(fit_group, cells, shared=dict(train=tr.feats, y_train=tr.y, dev=dv.feats, y_dev=dv.y,
                                                  options=opts, splits=[data(ctx)[n].feats for n in names]))
    out = []
    for h, (state, outputs) in zip(heads, (r for group in done.values() for r in group)):
        h.load_state_dict(state)
        h.to("cpu").eval()
        out.append(outputs)
    return out


def fit_group(heads, seeds, train, y_train, dev, y_dev, options, splits=()) -> list[tuple[dict, list]]:
    """Train ``heads`` stacked (one per seed); per head, its best-epoch weights and its (α, probabilities) on
    each of ``splits`` (the stack evaluated in one pass per split). A grid cell (``distributed.grid``)."""
    from probekit.classifiers.stacked import StackedAttention, fit_heads

    with one_thread():
        fit_heads(heads, train, y_train, dev, y_dev, seeds=seeds, **options)
        stack = StackedAttention(heads).eval()
        outputs = []
        for feats in splits:
            logits, alpha = stack.outputs(feats.to(options["device"]))
            outputs.append((alpha.double(), torch.softmax(logits.double(), -1)))
    return [({k: v.cpu() for k, v in h.state_dict().items()}, [(a[m], p[m]) for a, p in outputs])
            for m, h in enumerate(heads)]


def scores(probs, y) -> dict:
    """Accuracy and macro-F1 of the argmax of ``probs`` against ``y`` (empty when unlabelled)."""
    if y is None:
        return {}
    from sklearn.metrics import f1_score

    pred = np.asarray(probs).argmax(1)
    C = np.asarray(probs).shape[1]
    return {"accuracy": float((pred == y).mean()),
            "macro_f1": float(f1_score(y, pred, labels=list(range(C)), average="macro", zero_division=0))}


def real_mask(feats: Features) -> torch.Tensor:
    """[N, W] which positions of ``feats.index`` are real units."""
    return feats.index != feats.pad_row


class UniformHead(PoolingHead):
    """Attention pooling with α fixed uniform, 1/n over the n real units and 0 on padding (W&P's frozen
    uniform attention, their §3 and Table 2); the output layer has the attention head's layout."""

    weights_kind = "attention"

    def pool(self, units, mask, cls):
        m = mask.to(units.dtype)
        alpha = m / m.sum(1, keepdim=True).clamp(min=1)
        return torch.einsum("bu,bud->bd", alpha, units), alpha, {}


def model_name(ctx) -> str:
    src = getattr(ctx.classifier, "source", None)
    return str(getattr(src, "name", "model"))


def max_attention_bins(max_att: np.ndarray, edges=(0.0, 0.25, 0.5, 0.75, 1.0)):
    """Bin labels of max attention, as the papers' violin plots (four quarter-wide bins)."""
    idx = np.clip(np.digitize(max_att, edges[1:-1]), 0, len(edges) - 2)
    labels = [f"{edges[i]:.2f}–{edges[i + 1]:.2f}" for i in range(len(edges) - 1)]
    return idx, labels


def adversarial_loss(logits, alpha, p_base, a_base, lam: float):
    """Wiegreffe & Pinter's adversary loss on one batch: mean ½·TVD(p_adv, p_base) − λ·mean KL(α_adv ‖ α_base)
    (``a_base`` cut to the batch's units)."""
    from probekit.evaluation import metrics

    p = torch.softmax(logits.float(), -1)
    return 0.5 * metrics.tvd(p, p_base).mean() - lam * metrics.kl(alpha, a_base[:, :alpha.shape[1]]).mean()


def lowest_loss(module, epoch, *, epochs: int, patience: int) -> list[float]:
    """Run ``epoch()`` (one training epoch, returning its mean loss) at most ``epochs`` times; keep ``module``'s
    weights of the lowest loss, stop after ``patience`` epochs without a lower one. Returns the losses."""
    import copy

    losses, best, state, bad = [], float("inf"), copy.deepcopy(module.state_dict()), 0
    for _ in range(int(epochs)):
        losses.append(epoch())
        if losses[-1] < best:
            best, state, bad = losses[-1], copy.deepcopy(module.state_dict()), 0
        else:
            bad += 1
            if bad >= patience:
                break
    module.load_state_dict(state)
    return losses

