"""``python -m probekit.classify``: train a classifier with an explainable pooling head, evaluate, save.

``--train F --dev F [--test F] --out DIR`` trains (files: JSON Lines, TSV/CSV; or shared sets by name,
``rt:train``); ``--load DIR --test F --out DIR2`` evaluates a saved classifier. ``--task multiple-choice``
trains a reading-comprehension model instead (:mod:`probekit.classify.mc_run`; MCTest, JSON Lines). From Python:
``pk.classify(train, dev, test, **options)`` (:mod:`probekit.classify.train`).

(The command lives in the package's ``__main__`` because ``probekit/classify/`` is the package; in tests,
``from probekit.classify.__main__ import main``.)
"""
from __future__ import annotations

import inspect
import sys
from typing import Sequence

from ..cli import (Parser, add_cache_options, add_common_options, add_encoder_source_option, add_model_options,
                  add_output_options, encoder_source_scope, main_wrapper)
from .heads import HEADS
from .mc_train import MC_DEFAULTS
from .scratch import ENCODERS as SCRATCH
from .scratch_train import SCRATCH_DEFAULTS, sizes_help
from .train import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_WEIGHT_DECAY, TASKS, classify
from .vocab import UNITS

DEFAULTS = {k: p.default for k, p in inspect.signature(classify).parameters.items() if p.default is not p.empty}


def _mc_defaults() -> str:
    d = MC_DEFAULTS
    return (f"--epochs {d['epochs']} --lr {d['lr']:g} --head-lr {d['head_lr']:g} --batch-size {d['batch_size']} "
            f"--max-length {d['max_length']}")


def build_parser() -> Parser:
    p = Parser(prog="python -m probekit.classify", description=__doc__.split("\n\n")[0])
    p.add_argument("--task", choices=TASKS, default=DEFAULTS["task"],
                   help="classification (labelled texts) or multiple-choice (reading comprehension: MCTest .tsv "
                        "with its .ans, JSON Lines with passage/question/options/answer, or mc160:SPLIT, "
                        f"mc500:SPLIT; defaults: {_mc_defaults()}; checkpoints in OUT.checkpoint/, so the same "
                        "command again resumes a killed run after its last finished epoch)")
    p.add_argument("--checkpoint", default=None, metavar="DIR",
                   help="multiple-choice: checkpoint folder (default: OUT.checkpoint beside --out)")
    data = p.add_argument_group("data")
    data.add_argument("--train", default=None, nargs="+", metavar="FILE",
                      help="training data: .jsonl, .tsv/.txt, .csv, or a named set NAME:SPLIT (rt, amazon, imdb, "
                      "yelp, sls, hatexplain, snli; splits train/dev/test); several are concatenated (original + "
                      "augmented data, e.g. from probekit.attack --augment)")
    data.add_argument("--dev", default=None, help="dev data (model selection: the best dev epoch is kept)")
    data.add_argument("--test", default=None, help="test data (optional)")
    data.add_argument("--data-root", default=None,
                      help="folder of the named sets (default $PROBEKIT_DATA, else ~/.local/share/probekit/data)")
    data.add_argument("--load", default=None, metavar="DIR",
                      help="evaluate the classifier saved in DIR on --test (and/or --dev) instead of training")
    m = p.add_argument_group("classifier")
    m.add_argument("--head", choices=HEADS, default=DEFAULTS["head"], help="pooling head")
    m.add_argument("--encoder", choices=["frozen", "none", *SCRATCH], default=DEFAULTS["encoder"],
                   help="frozen encoder (cached word vectors), none: pool the input word embeddings, or an encoder "
                        "trained from scratch over its own vocabulary: lstm (BiLSTM, Jain & Wallace), cnn (Conv1D "
                        "k=3 + ReLU), average (per-unit Linear + tanh, no context); defaults for these: "
                        f"{SCRATCH_DEFAULTS['epochs']} epochs, Adam lr {SCRATCH_DEFAULTS['lr']:g}, weight decay "
                        f"{SCRATCH_DEFAULTS['weight_decay']:g}")
    m.add_argument("--finetune", action="store_true", help="fine-tune the encoder with the head")
    m.add_argument("--level", choices=["word", "token"], default=DEFAULTS["level"],
                   help="pool word vectors (mean of their sub-tokens) or sub-tokens")
    m.add_argument("--layer", type=int, default=None, help="hidden layer the head reads (default: the last)")
    m.add_argument("--attention-dim", type=int, default=DEFAULTS["attention_dim"],
                   help="size of W in the attention score vᵀtanh(W h)")
    m.add_argument("--n-heads", type=int, default=DEFAULTS["n_heads"], help="pooling heads of attention-multi")
    m.add_argument("--dropout", type=float, default=DEFAULTS["dropout"], help="dropout before the output layer")
    s = p.add_argument_group("encoders trained from scratch (--encoder lstm|cnn|average)")
    s.add_argument("--units", choices=UNITS, default=DEFAULTS["units"],
                   help="word: whitespace-separated words; char: every character; auto: CJK script one character "
                        "at a time, other text as words")
    s.add_argument("--min-count", type=int, default=DEFAULTS["min_count"],
                   help="keep units seen at least this often in --train (others become <unk>)")
    s.add_argument("--max-vocab", type=int, default=None, help="at most this many units (padding and <unk> included)")
    s.add_argument("--vectors", default=None, metavar="FILE",
                   help="pre-trained vectors, word2vec/GloVe text format (a local file; its width must equal "
                        "--embedding-dim); the share of the vocabulary it covers is reported")
    s.add_argument("--embedding-dim", type=int, default=None, help=f"embedding size (default: {sizes_help()} "
                   "embedding/hidden)")
    s.add_argument("--hidden-dim", type=int, default=None, help="hidden size (per LSTM direction; CNN filters)")
    t = p.add_argument_group("training")
    t.add_argument("--limit", type=int, default=None,
                   help="train on a seeded sample of N examples of --train (--seed), in file order")
    t.add_argument("--epochs", type=int, default=None,
                   help=f"epochs (default {DEFAULT_EPOCHS['frozen']} frozen/none, {DEFAULT_EPOCHS['finetune']} "
                        f"fine-tuning)")
    t.add_argument("--lr", type=float, default=None,
                   help=f"AdamW learning rate (default {DEFAULT_LR['frozen']:g} frozen/none, "
                        f"{DEFAULT_LR['finetune']:g} fine-tuning; 3e-3 for the frozen cls head)")
    t.add_argument("--head-lr", type=float, default=None,
                   help=f"multiple-choice: learning rate of the scoring head and the encoder's pooler (default "
                        f"{MC_DEFAULTS['head_lr']:g}; --lr is the rest of the encoder's)")
    t.add_argument("--weight-decay", type=float, default=None,
                   help=f"weight decay (default {DEFAULT_WEIGHT_DECAY:g} AdamW; encoders from scratch "
                        f"{SCRATCH_DEFAULTS['weight_decay']:g}, Adam)")
    t.add_argument("--warmup", type=float, default=DEFAULTS["warmup"],
                   help="share of the steps for linear warm-up (then linear decay to 0)")
    t.add_argument("--no-baselines", dest="baselines", action="store_false",
                   help="skip the TF-IDF + logistic-regression and majority-class rows")
    p.add_argument("--out", default=None, help="run folder (default runs/classify-<model>-<time>)")
    add_model_options(p, batch_size=DEFAULTS["batch_size"])
    for action in p._actions:   # batch size and max length default per task
        if action.dest == "batch_size":
            action.help = (f"examples per batch (default {DEFAULT_BATCH_SIZE}; multiple-choice: questions per "
                           f"optimiser step, default {MC_DEFAULTS['batch_size']})")
        elif action.dest == "max_length":
            action.help = (f"truncate inputs to this many tokens (default: the model's maximum; multiple-choice: "
                           f"{MC_DEFAULTS['max_length']}, cutting only the passage)")
    add_cache_options(p)
    add_output_options(p)
    add_common_options(p)
    add_encoder_source_option(p)
    return p


def _main(argv: Sequence[str] | None = None) -> int:
    options = vars(build_parser().parse_args(list(sys.argv[1:] if argv is None else argv)))
    if options["train"] is not None and len(options["train"]) == 1:
        options["train"] = options["train"][0]
    out, overwrite, figures = options.pop("out"), options.pop("overwrite"), options.pop("figures")
    for name in ("checkpoint", "head_lr", "limit", "max_vocab", "vectors", "embedding_dim", "hidden_dim"):
        # multiple-choice or from-scratch only: absent unless given
        if options[name] is None:
            options.pop(name)
    with encoder_source_scope(options):
        result = classify(**options, out=out, overwrite=overwrite)
    path = result.write(out, overwrite=overwrite, figures=figures)
    if not options["quiet"]:
        from ..report.classify import summary_table
        from ..report.rundir import markdown_table

        print(markdown_table(summary_table(result.frame)))
        if result.record.get("baselines", {}).get("head_vs_linear"):
            print(f"head against the linear baseline: {result.record['baselines']['head_vs_linear']}")
    tail = f"; {result.truncation_line()}" if hasattr(result, "truncation_line") else ""
    print(f"results: {', '.join(str(path / f) for f in result.files())}{tail}")
    return 0


main = main_wrapper(_main)

if __name__ == "__main__":
    raise SystemExit(main())
