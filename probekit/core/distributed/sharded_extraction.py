"""Activation extraction sharded over Ray workers, byte for byte what one process writes.

:func:`probekit.core.extraction.extract` cuts the length-sorted corpus into windows of whole batches; here each
window is a Ray task that tokenises its sentences and runs exactly the batches one process would run (same
members, same padding), on a GPU of its own where the cluster has GPUs. The driver gets the windows back in
order and writes them as usual, so the cache entry (and every table built from it) does not depend on the
number of workers. At most ``workers`` windows are in flight, so the driver's memory holds a few windows. A
task that dies with its worker is retried by Ray; its result is taken once.
"""
from __future__ import annotations

from collections import deque

from probekit.core.progress import progress, quiet

_ENCODERS: dict = {}


def window(name: str, source: str, attention: bool, fingerprint: str, examples, idx, options: dict):
    """A Ray task's work: the Activations of one window (``examples`` are those of ``idx``), computed with the
    model loaded once per worker process, on its GPU when it has one."""
    import ray
    import torch

    from probekit.core.encoder import load_encoder
    from probekit.core.extraction import encode_examples, extract

    device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
    key = (name, source, attention, device)
    if key not in _ENCODERS:
        _ENCODERS[key] = load_encoder(source, attention=attention, device=device)
        _ENCODERS[key].name = name          # the display name is part of the fingerprint
    encoder = _ENCODERS[key]
    if encoder.fingerprint() != fingerprint:
        raise RuntimeError(f"the worker's model at {source} differs from the driver's (another version of the "
                           f"weights on this node?)")
    o = options
    encoded = encode_examples(encoder, examples, max_length=o["max_length"], level=o["level"],
                              segment_ids=o["segment_ids"], warn=False)
    for e, i in zip(encoded, idx):
        e.index = i
    with quiet(True):   # the batches of length_batches over the window are the single process's batches
        return list(extract(encoder, examples, encoded=encoded, hidden=o["hidden"], attention=o["attention"],
                            level=o["level"], pooling=o["pooling"], attention_from=o["attention_from"],
                            batch_size=o["batch_size"], no_position=o["no_position"], dtype=o["dtype"]))


class ShardedExtraction:
    """The runner :func:`probekit.core.extraction.extract` hands its windows to during a session."""

    def __init__(self, workers: int):
        self.workers = workers

    def __call__(self, encoder, examples, windows, options, desc):
        import ray

        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=3)(window)
        fingerprint = encoder.fingerprint()
        bar = progress(total=sum(len(w) for w in windows), desc=f"{desc} ({self.workers} Ray workers)",
                       unit="sent")
        pending, todo = deque(), iter(windows)
        try:
            while True:
                while len(pending) < self.workers:
                    idx = next(todo, None)
                    if idx is None:
                        break
                    pending.append(task.remote(encoder.name, encoder.source, encoder.attention, fingerprint,
                                               [examples[i] for i in idx], idx, options))
                if not pending:
                    return
                acts = ray.get(pending.popleft())
                yield from acts
                bar.update(len(acts))
        finally:
            for ref in pending:
                ray.cancel(ref)
            bar.close()
