"""A saved model folder is verified before anything in it is used.

- ``manifest.json`` holds the sha256 of every file the folder's model is made of (weights, configs, the
  tokenizer). It is written last when saving, so a folder without it was never finished, and checked first when
  loading: a file that differs is named as damaged or edited, one that is missing as missing.
- ``classifier.json`` is checked field by field (types, ranges, labels against ``label2id``, unknown keys) before
  any weights are read, and every problem is reported in one message.
- A frozen classifier names its encoder instead of storing it. The encoder is loaded only from the bundled
  model, a folder inside the classifier folder, or a folder the user names: ``--encoder-source DIR``,
  ``PROBEKIT_ENCODER_SOURCE=DIR`` (several separated by ``os.pathsep``; a folder allows the models below it) or ``with
  pk.encoder_sources(DIR):`` in Python. A named model folder also stands in for a recorded one that moved; the
  fingerprint check then says whether it is the same model.
- Any error while reading weights (a truncated or damaged safetensors file, pickle weights torch refuses) is one
  line naming the file.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
from pathlib import Path

from probekit.core.errors import UserError

MANIFEST = "manifest.json"
ENV = "PROBEKIT_ENCODER_SOURCE"
_SOURCES: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("encoder_sources", default=())


# --- the manifest ---------------------------------------------------------------------------------------------

def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _listed(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.name != MANIFEST and not p.name.startswith("."))


def write_manifest(folder, files=None) -> Path:
    """``folder/manifest.json`` with the sha256 of ``files`` (paths relative to ``folder``; default: every file
    in it). Call it last: its presence says the folder was written whole."""
    from probekit.core.outputs import write_atomic

    folder = Path(folder)
    names = _listed(folder) if files is None else sorted(str(f) for f in files)
    body = {"format": 1, "sha256": {name: sha256(folder / name) for name in names}}
    return write_atomic(folder / MANIFEST, json.dumps(body, indent=1) + "\n")


def check_manifest(folder, scope=(), *, what: str = "classifier folder", legacy_hint: str = "") -> bool:
    """Compare every file the manifest lists with its hash, and refuse a file within ``scope`` (the model's
    files and folders) that it does not list. False (and a one-line warning) for a folder saved before
    manifests existed; a UserError for a damaged, edited, missing or added file."""
    import sys

    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        print(f"probekit: warning: {what} {folder} has no {MANIFEST} (saved by an older probekit): its files "
              f"cannot be checked for damage{legacy_hint}", file=sys.stderr)
        return False
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))["sha256"]
        if not isinstance(listed, dict) or not all(isinstance(v, str) for v in listed.values()):
            raise TypeError("sha256 is not a mapping of file names to hashes")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a valid manifest ({exc.__class__.__name__}: {exc})") from None
    for name, digest in sorted(listed.items()):
        p = folder / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise UserError(f"{path}: lists {name!r}, a file outside the folder")
        if not p.is_file():
            raise UserError(f"{p} is missing ({MANIFEST} lists it); the folder is incomplete")
        if sha256(p) != digest:
            raise UserError(f"{p} is damaged or edited: its sha256 differs from the one in {MANIFEST}")
    added = [n for n in model_files(folder, [s for s in scope if (folder / s).exists()]) if n not in listed]
    if added:
        raise UserError(f"{folder / added[0]} is not in {MANIFEST}: it was added after the model was saved "
                        f"(remove it, or re-save the model)")
    return True


# --- where a frozen encoder may come from -----------------------------------------------------------------------

@contextlib.contextmanager
def encoder_sources(*folders):
    """Allow frozen classifiers loaded inside this block to read their encoder from ``folders`` (model folders,
    or folders holding models), as ``PROBEKIT_ENCODER_SOURCE`` does for commands."""
    token = _SOURCES.set(_SOURCES.get() + tuple(str(f) for f in folders))
    try:
        yield
    finally:
        _SOURCES.reset(token)


def named_sources() -> list[str]:
    env = [s for s in os.environ.get(ENV, "").split(os.pathsep) if s.strip()]
    return [*_SOURCES.get(), *env]


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except (ValueError, OSError):
        return False


def encoder_location(folder: Path, info: dict, cfg_path: Path) -> str | None:
    """What to load a frozen classifier's encoder from: None for the bundled model, else a path. Anything not
    inside the classifier folder and not named by the user is refused, saying how to allow it."""
    from probekit.core.encoder import DEFAULT_MODEL

    if info.get("name") == DEFAULT_MODEL:
        return None
    source = str(info["source"])
    recorded = Path(source)
    if not recorded.is_absolute() and (folder / recorded).exists():
        recorded = folder / recorded
    if _inside(recorded, folder):
        return str(recorded)
    named = [Path(s) for s in named_sources()]
    if any(source == str(n) for n in named) and not recorded.exists():
        return source                           # a Hugging Face cache name, named as recorded
    if any(recorded == n or _inside(recorded, n) for n in named) and recorded.exists():
        return str(recorded)
    models = [n for n in named if (n / "config.json").is_file()]
    if len(models) == 1:
        return str(models[0])                   # a moved model: the fingerprint check decides
    raise UserError(f"{cfg_path}: its encoder {source} is outside the classifier folder and not the bundled model; "
                    f"probekit loads it only when you name it: --encoder-source {source} (or the folder it moved to), "
                    f"{ENV}={source}, or in Python `with pk.encoder_sources({source!r}):`")


def load_weights(path: Path, what: str = "weights"):
    """The tensors of a safetensors file; damage of any kind is one line naming the file."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:                    # safetensors raises its own error type for a damaged header
        raise UserError(f"{path}: cannot read the {what} ({_first_line(exc)}); the file is damaged or not "
                        f"safetensors") from None


def load_encoder_checked(where, **kwargs):
    """``core.encoder.load_encoder`` with every failure of reading the weights as one line."""
    from probekit.core.encoder import load_encoder

    try:
        return load_encoder(where, **kwargs)
    except UserError:
        raise
    except Exception as exc:                    # UnpicklingError, SafetensorError, RuntimeError of a bad state
        raise UserError(f"{where}: cannot load the encoder ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text[:200]}"


# --- saving whole or not at all -------------------------------------------------------------------------------

@contextlib.contextmanager
def saving(folder, what: str = "the classifier"):
    """Remove whatever this save wrote into ``folder`` if it fails; a full or read-only disk is one line."""
    import shutil

    from probekit.core.outputs import DISK_ERRORS

    folder = Path(folder)
    created = not folder.exists()
    before = set(folder.rglob("*")) if not created else set()
    try:
        yield folder
    except BaseException as exc:
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            for p in sorted(set(folder.rglob("*")) - before, key=lambda q: len(q.parts), reverse=True):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in DISK_ERRORS or "No space left" in str(exc):
            reason = getattr(exc, "strerror", None) or _first_line(exc)
            raise UserError(f"cannot save {what} to {folder}: {reason} (nothing of it was kept)") from None
        raise


def model_files(folder: Path, names) -> list[str]:
    """``names`` (files or folders, relative to ``folder``) expanded to the files they hold."""
    out = []
    for name in names:
        p = folder / name
        out += [q.relative_to(folder).as_posix() for q in sorted(p.rglob("*")) if q.is_file()] if p.is_dir() \
            else [name]
    return out
