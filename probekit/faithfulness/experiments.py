"""The experiments by CLI name, their module, and every option's default (one place).

Modules are imported when an experiment runs, so ``--experiments tau`` never imports the adversary's code.
"""
from __future__ import annotations

import importlib

#: CLI name → "module:function" (relative to probekit.faithfulness); the order is the run and report order
EXPERIMENTS = {
    "tau": "jw_correlation:run",                  # Jain & Wallace: Kendall τ attention vs gradient / LOO
    "permutation": "jw_permutation:run",          # Jain & Wallace: shuffled attention, median TVD (Fig. 10)
    "adversary": "jw_adversary:run",              # Jain & Wallace: ε-max JSD adversarial attention (Fig. 11, 12)
    "single-weight": "ss_erasure:run_single",     # Serrano & Smith: zero the top α vs a random one (Fig. 4, 5)
    "sets": "ss_sets:run_sets",                   # Serrano & Smith: fraction removed before a flip (Fig. 8)
    "uniform": "wp_retrain:run_uniform",          # Wiegreffe & Pinter: is attention needed? (Table 2)
    "seeds": "wp_retrain:run_seeds",              # Wiegreffe & Pinter: seed variance (Fig. 2)
    "e2e-adversary": "wp_adversary:run",          # Wiegreffe & Pinter: end-to-end adversarial training (Fig. 4)
    "diagnostic": "wp_diagnostic:run",            # W&P: imposed weights in a per-word MLP (Table 3; after the
                                                  # e2e adversary, whose α it imposes too)
    "eraser": "eraser:run",                       # DeYoung et al.: comprehensiveness, sufficiency, plausibility
}

#: experiments that never read the attention source (ERASER ranks attribution methods on the classifier itself),
#: so they run where the attention under test cannot be had (e.g. --attention cls on a DistilBERT classifier)
WITHOUT_SOURCE = ("eraser",)

#: every experiment option and its default (Jain & Wallace's, Serrano & Smith's, Wiegreffe & Pinter's values)
DEFAULTS = {
    "permutations": 100,          # shuffles of α per example (J&W)
    "epsilon": 0.01,              # adversary: TVD allowed in the hinge (J&W ε_opt, on the TVD scale)
    "accept": 0.05,               # adversary: candidates with TVD above this are rejected (J&W)
    "candidates": 5,              # adversary: K attention vectors per example (J&W)
    "adversary_steps": 500,       # adversary: Adam steps (lr 0.01, amsgrad) (J&W)
    "adversary_lr": 0.01,
    "hinge": 500.0,               # adversary: weight of ReLU(TVD − ε) (J&W)
    "random_draws": 5,            # sets: seeded random orderings (S&S)
    "seeds": 5,                   # W&P: retrained seeds (the paper used 8)
    "epochs": 20,                 # W&P: epochs of the uniform/seeds/diagnostic heads (classify's frozen default;
    #                               the paper: 8 epochs of its BiLSTM)
    "lambdas": (0.0001, 0.001, 0.01, 0.1, 1.0),  # W&P end-to-end adversary: KL weights λ on their scale (output
    #                                               term ½·TVD = their 0.5·|σ(ŷ_adv) − ŷ_base| on two classes)
    "adversary_epochs": 80,       # W&P end-to-end adversary: at most this many epochs (theirs: 80)
    "patience": 10,               # W&P end-to-end adversary: epochs without a lower training loss before stopping
    "ks": (1, 5, 10, 20, 50),     # ERASER: % of words removed / kept
    "flip_max_words": 0,          # ERASER decision flips: most words removed one by one (0: all of them)
    "resamples": 9999,            # bootstrap resamples of every 95 % interval (probekit.core.intervals)
}


def names() -> list[str]:
    return list(EXPERIMENTS)


def get(name: str):
    module, fn = EXPERIMENTS[name].split(":")
    return getattr(importlib.import_module(f"probekit.faithfulness.{module}"), fn)
