"""Resumable training: one folder per finished epoch, tensors only (safetensors, and ``torch.save`` of the
optimizer, scheduler and RNG states, read back with ``weights_only=True``), never pickle of objects.

``DIR/epoch-0003/`` holds ``model.safetensors`` (the weights after that epoch), ``best.safetensors`` (the best
dev epoch's weights, when that is an earlier epoch), ``trainer.pt`` (AdamW and scheduler state, torch CPU/CUDA
RNG states, the batch-order generator) and ``trainer.json`` (the settings, the learning curve so far, the best
epoch). An epoch folder is written under a temporary name and renamed when complete, so a run killed at any
moment leaves only whole epochs; older epoch folders are removed after the rename.

The settings (epochs, learning rate, batch size, max length, seed, …, and hashes of the starting weights and of
the train/dev data) must match on resume, else a :class:`UserError` says which differs. Each epoch folder's
``manifest.json`` (written last) holds the sha256 of its files, so a damaged or edited ``trainer.pt`` or weights
file is refused by name instead of resuming from it. A checkpoint path that is a file, or not writable, is
refused when the run starts, not after its first epoch.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import torch

from probekit.core.errors import UserError

_EPOCH = re.compile(r"^epoch-(\d{4,})$")


def state_hash(module: torch.nn.Module) -> str:
    """Hash of every tensor of ``module``'s state (names, shapes, dtypes, values)."""
    h = hashlib.sha256()
    for key, t in sorted(module.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{key}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.dtype != torch.bool else t.numpy().tobytes())
    return h.hexdigest()[:32]


def items_hash(items) -> str:
    h = hashlib.sha256()
    for it in items:
        h.update(json.dumps([it.passage, it.question, list(it.options), int(it.answer)]).encode())
    return h.hexdigest()[:32]


def _cpu_state(state: dict) -> dict:
    return {k: v.detach().to("cpu").clone().contiguous() for k, v in state.items()}


class Checkpoint:
    """The checkpoint folder of one training run with the given ``settings`` (a JSON-able dict)."""

    def __init__(self, folder, settings: dict):
        self.folder = Path(folder)
        self.settings = json.loads(json.dumps(settings))
        existing = next((q for q in [self.folder, *self.folder.parents] if q.exists()), None)
        if existing is not None and not existing.is_dir():
            raise UserError(f"--checkpoint {self.folder}: {existing} is a file, not a folder")
        if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(f"--checkpoint {self.folder}: {existing} is not writable")

    def latest(self) -> Path | None:
        if not self.folder.is_dir():
            return None
        done = sorted((int(m.group(1)), p) for p in self.folder.iterdir()
                      if (m := _EPOCH.match(p.name)) and p.is_dir())
        return done[-1][1] if done else None

    def load(self, device) -> dict | None:
        """The last finished epoch's state, or None when there is none; settings that differ are an error."""
        from safetensors.torch import load_file

        from probekit.classifiers.verify import check_manifest

        folder = self.latest()
        if folder is None:
            return None
        # an epoch written before manifests existed is read as before, with a warning
        check_manifest(folder, ("model.safetensors", "best.safetensors", "trainer.pt", "trainer.json"),
                       what="checkpoint", legacy_hint="; remove it to start over if resuming fails")
        try:
            info = json.loads((folder / "trainer.json").read_text(encoding="utf-8"))
            trainer = torch.load(folder / "trainer.pt", map_location="cpu", weights_only=True)
            model = load_file(str(folder / "model.safetensors"))
            best = load_file(str(folder / "best.safetensors")) if info["best_epoch"] != info["epoch"] else model
        except Exception as exc:       # OSError, UnpicklingError, SafetensorError, KeyError …
            raise UserError(f"checkpoint {folder} is unreadable ({exc.__class__.__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}); remove it to start over") from None
        old = info.get("settings", {})
        for key in sorted(set(old) | set(self.settings)):
            if old.get(key) != self.settings.get(key):
                raise UserError(f"checkpoint {self.folder} was written with {_show(key, old.get(key))}, this run "
                                f"has {_show(key, self.settings.get(key))}: use the same options to resume, or "
                                f"another output folder to start a new run")
        return {"epoch": info["epoch"], "rows": info["rows"], "timing": info["timing"],
                "best_epoch": info["best_epoch"], "model": model, "best": best, **trainer}

    def save(self, *, epoch: int, model, best_state: dict, best_epoch: int, optimizer, scheduler, generator,
             rows: list, timing: list, dev_scores=None) -> Path:
        from safetensors.torch import save_file

        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"epoch-{epoch:04d}"
        tmp = self.folder / f".epoch-{epoch:04d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_file(_cpu_state(model.state_dict()), str(tmp / "model.safetensors"))
        if best_epoch != epoch:
            save_file(_cpu_state(best_state), str(tmp / "best.safetensors"))
        trainer = {"dev_scores": None if dev_scores is None else torch.as_tensor(dev_scores),
                   "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                   "rng_cpu": torch.get_rng_state(), "generator": generator.get_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            trainer["rng_cuda"] = torch.cuda.get_rng_state_all()
        torch.save(trainer, tmp / "trainer.pt")
        (tmp / "trainer.json").write_text(json.dumps({"epoch": epoch, "best_epoch": best_epoch, "rows": rows,
                                                      "timing": timing, "settings": self.settings}, indent=1),
                                          encoding="utf-8")
        from probekit.classifiers.verify import write_manifest

        write_manifest(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for p in self.folder.iterdir():
            m = _EPOCH.match(p.name)
            if m and int(m.group(1)) < epoch:
                shutil.rmtree(p, ignore_errors=True)
        return final

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def restore_rng(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["rng_cpu"])
    generator.set_state(state["generator"])
    if "rng_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])


def _show(key: str, value) -> str:
    if key in ("model", "train", "dev"):
        return f"{key} {'(none)' if value is None else 'hash ' + str(value)[:12]}"
    return f"--{key.replace('_', '-')} {value}"
