"""Multiple-choice reading comprehension (Si et al. 2019's setting): the model, its training, baselines, saving and the
run of ``pk.classify(task="multiple-choice")``."""
