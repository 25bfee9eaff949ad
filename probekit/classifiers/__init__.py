"""Classifiers with explainable pooling heads: readers, heads, the model, training, baselines, saving."""
