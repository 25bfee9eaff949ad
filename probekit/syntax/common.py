"""What the syntax analyses (deps, coref, parse) share: the encoder, treebanks, figures."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from probekit.core.errors import UserError


def open_encoder(model, device: str):
    """``model`` as a loaded :class:`~probekit.core.encoder.Encoder` with attention maps (a name, a folder or an
    Encoder already loaded with ``attention=True``)."""
    from probekit.core.encoder import Encoder, load_encoder

    if isinstance(model, Encoder):
        if not model.attention:
            raise UserError("this encoder was loaded without attention maps: load_encoder(..., attention=True)")
        return model
    return load_encoder(model, attention=True, device=device)


def model_limit(encoder, max_length: int | None) -> int:
    """Tokens per input: ``max_length`` when given, never above the model's maximum."""
    return min(max_length or encoder.max_length, encoder.max_length)


def read_treebank(path, *, skip_bad: bool, limit: int | None, problems: list[str]):
    """A CoNLL-U file's sentences (malformed ones skipped into ``problems`` with ``skip_bad``); none is an error."""
    from probekit.corpora.conllu import read_conllu

    examples = read_conllu(path, skip_bad=skip_bad, problems=problems, limit=limit, offer_skip=True)
    if not examples:
        raise UserError(f"{path}: no usable sentences")
    return examples


def check_word_units(activations, example, what: str) -> None:
    """Every word must have kept its unit: scores index words by position, so a word the tokenizer dropped
    would shift every later word. One ``file:line`` line instead of a wrong score or a traceback."""
    n_units = int((~np.asarray(activations.special, dtype=bool)).sum())
    words = list(example.words or [])
    if n_units == len(words):
        return
    source = (example.meta or {}).get("source") or "an input"
    empty = [f"{i + 1} {w!r}" for i, w in enumerate(words) if not any(c.isprintable() and not c.isspace()
                                                                         for c in w)]
    hint = f" (word {', '.join(empty)} has no visible character)" if empty else ""
    raise UserError(f"{source}: {len(words)} words but the tokenizer kept {n_units} of them{hint}; "
                    f"{what} needs one unit per word")


def stem(path) -> str:
    return Path(str(path)).stem


def head_grids(panels, *, num_layers: int, num_heads: int, title: str, cols: int = 3, label: str = "accuracy"):
    """A figure of layer × head grids, one per ``(title, [L, H] values)`` panel, on one 0…1 colour bar."""
    from matplotlib.figure import Figure

    n = len(panels)
    cols = max(1, min(cols, n))
    nrows = int(np.ceil(n / cols))
    fig = Figure(figsize=(max(4.2 * cols, 0.45 * num_heads + 2.5),
                          0.32 * num_layers * nrows + 1.6 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, cols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    im = None
    for ax, (name, values) in zip(axes.flat, panels):
        im = ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_title(name, fontsize=9)
        ax.set_xticks(range(num_heads), [str(h + 1) for h in range(num_heads)], fontsize=6)
        ax.set_yticks(range(num_layers), [str(l + 1) for l in range(num_layers)], fontsize=6)
        ax.set_xlabel("head", fontsize=8)
        ax.set_ylabel("layer", fontsize=8)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label=label)
    fig.suptitle(title, fontsize=10)
    return fig
