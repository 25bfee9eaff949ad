"""Adversarial attacks on trained models: Si et al.'s (2019) multiple-choice attacks (``mc``), perturbation and
key-word attacks on classifiers (``perturb``), and ``pk.attack`` (``run``), which runs them and builds the tables."""
