"""Word-level activations on disk: the on-disk format, and the fingerprinted cache built on it.

A store is a folder readable with numpy alone (``allow_pickle=False``) plus one JSON file:

- ``meta.json``        shapes, dtype, options, per-file checksums; ``units.jsonl`` the units of each sentence
- ``offsets.npy``      int64 [N+1]: sentence i owns rows ``offsets[i]:offsets[i+1]`` of every hidden file
- ``hidden_LL.npy``    [total_units, D] for layer LL (00 = embeddings … L), one file per layer
- ``no_position.npy``  [total_units, D] embedding output with position embeddings zeroed (if asked)
- ``attention_LL.npy`` flat float array for layer LL (01 … L); sentence i's [H, U_i, U_i] block starts at
  ``attention_offsets.npy[i]``
- ``special.npy`` / ``word_ids.npy`` per-unit flags / word indices, aligned with the hidden rows

Writes go to a temporary folder renamed into place, so a killed run leaves no half-written entry; a damaged
entry fails its checksum, is reported in one line and recomputed.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from .encoder import Encoder
from .examples import Example
from .extraction import encode_examples, extract

FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    env = os.environ.get("PROBEKIT_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "probekit"


def _crc(path: Path) -> str:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return f"{crc:08x}"


class ActivationStore:
    """Read access to a store folder; arrays are memory-mapped, so opening is cheap."""

    def __init__(self, path: str | os.PathLike, _tmp: tempfile.TemporaryDirectory | None = None):
        self.path = Path(path)
        self._tmp = _tmp  # keeps a --no-cache store alive as long as this object
        self.meta = json.loads((self.path / "meta.json").read_text(encoding="utf-8"))
        self.offsets = np.load(self.path / "offsets.npy", allow_pickle=False)
        self.special = np.load(self.path / "special.npy", allow_pickle=False)
        self.word_ids = np.load(self.path / "word_ids.npy", allow_pickle=False)
        self._att_offsets = (np.load(self.path / "attention_offsets.npy", allow_pickle=False)
                             if self.meta["attention"] else None)
        self._units: list[list[str]] | None = None
        self._att_files: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def num_layers(self) -> int:
        """L: hidden layers are 0…L, attention layers 1…L."""
        return int(self.meta["num_layers"])

    @property
    def units(self) -> list[list[str]]:
        if self._units is None:
            with open(self.path / "units.jsonl", encoding="utf-8") as f:
                self._units = [json.loads(line) for line in f]
        return self._units

    def hidden(self, layer: int) -> np.ndarray:
        """All units' vectors of one layer, [total_units, D] (memory-mapped)."""
        return np.load(self.path / f"hidden_{layer:02d}.npy", mmap_mode="r", allow_pickle=False)

    def no_position(self) -> np.ndarray:
        return np.load(self.path / "no_position.npy", mmap_mode="r", allow_pickle=False)

    def _attention_files(self) -> list[np.ndarray]:
        """The per-layer attention files, memory-mapped once (index 0 = layer 1)."""
        if self._att_files is None:
            self._att_files = [np.load(self.path / f"attention_{l:02d}.npy", mmap_mode="r", allow_pickle=False)
                               for l in range(1, self.num_layers + 1)]
        return self._att_files

    def _attention_block(self, index: int) -> tuple[int, int]:
        n = int(self.offsets[index + 1] - self.offsets[index])
        return int(self._att_offsets[index]), n

    def attention(self, index: int, layer: int) -> np.ndarray:
        """[H, U, U] word-level attention of sentence ``index`` in layer ``layer`` (1…L), float32."""
        start, n = self._attention_block(index)
        H = int(self.meta["num_heads"])
        flat = self._attention_files()[layer - 1]
        return np.asarray(flat[start:start + H * n * n], dtype=np.float32).reshape(H, n, n)

    def sentence_attention(self, index: int) -> np.ndarray:
        """[L, H, U, U] word-level attention of sentence ``index`` in every layer, in the stored dtype."""
        start, n = self._attention_block(index)
        H = int(self.meta["num_heads"])
        files = self._attention_files()
        return np.stack([f[start:start + H * n * n] for f in files]).reshape(len(files), H, n, n)

    def rows(self, index: int) -> slice:
        return slice(int(self.offsets[index]), int(self.offsets[index + 1]))

    def verify(self) -> str | None:
        """None if every file matches its recorded checksum, else what is wrong."""
        for name, info in self.meta["files"].items():
            p = self.path / name
            if not p.is_file():
                return f"{name} is missing"
            if p.stat().st_size != info["bytes"] or _crc(p) != info["crc32"]:
                return f"{name} is damaged"
        return None


def cache_key(encoder: Encoder, examples: Sequence[Example], options: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"format": FORMAT_VERSION, "model": encoder.name, "fingerprint": encoder.fingerprint(),
                         **options}, sort_keys=True).encode())
    for ex in examples:
        h.update(json.dumps([ex.words, ex.text, ex.words_b], ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()[:40]


def write_store(encoder: Encoder, examples: Sequence[Example], path: str | os.PathLike, *, hidden: bool = True,
                attention: bool = False, no_position: bool = False, pooling: str = "mean",
                attention_from: str = "mean", max_length: int | None = None, batch_size: int = 32,
                dtype: str = "float16", segment_ids: str = "standard", extra_meta: dict | None = None) -> Path:
    """Extract and write a store at ``path`` atomically (temporary sibling folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        _fill(encoder, examples, tmp, hidden, attention, no_position, pooling, attention_from, max_length,
              batch_size, dtype, segment_ids, extra_meta or {})
        try:
            os.rename(tmp, path)
        except OSError:
            if (path / "meta.json").is_file():  # someone else finished the same entry first
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                shutil.rmtree(path, ignore_errors=True)
                os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _fill(encoder, examples, out: Path, hidden, attention, no_position, pooling, attention_from, max_length,
          batch_size, dtype, segment_ids, extra_meta) -> None:
    encoded = encode_examples(encoder, examples, max_length=max_length, segment_ids=segment_ids)
    counts = np.array([e.alignment.n_units for e in encoded], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    total = int(offsets[-1])
    L, H, D = encoder.num_layers, encoder.num_heads, encoder.hidden_size
    np_dtype = np.dtype(dtype)

    def new_file(name: str, shape: tuple[int, ...]) -> np.ndarray:
        # A plain ndarray view of the mapping: per-sentence writes skip np.memmap's subclass overhead. The
        # pages reach the file through the OS page cache, which a killed process does not lose, so there is
        # no msync; the rename below is what makes the entry visible.
        return np.lib.format.open_memmap(out / name, mode="w+", dtype=np_dtype, shape=shape).view(np.ndarray)

    hid_files = [new_file(f"hidden_{l:02d}.npy", (total, D)) for l in range(L + 1)] if hidden else []
    att_offsets = np.concatenate([[0], np.cumsum(H * counts * counts)]).astype(np.int64)
    att_files = ([new_file(f"attention_{l:02d}.npy", (int(att_offsets[-1]),)) for l in range(1, L + 1)]
                 if attention else [])
    nopos_file = None
    special = np.zeros(total, dtype=bool)
    word_ids = np.zeros(total, dtype=np.int64)
    units: list[list[str]] = [[] for _ in encoded]
    for act in extract(encoder, examples, hidden=hidden, attention=attention, pooling=pooling,
                       attention_from=attention_from, batch_size=batch_size, no_position=no_position,
                       encoded=encoded, dtype=dtype):
        i = act.index
        rows = slice(int(offsets[i]), int(offsets[i + 1]))
        special[rows] = act.special
        word_ids[rows] = act.word_ids
        units[i] = act.units
        for l, f in enumerate(hid_files):
            f[rows] = act.hidden[l]
        for l, f in enumerate(att_files):
            f[int(att_offsets[i]):int(att_offsets[i + 1])] = act.attention.array[l].reshape(-1)
        if no_position:
            if nopos_file is None:
                nopos_file = new_file("no_position.npy", (total, act.no_position.shape[-1]))
            nopos_file[rows] = act.no_position
    del hid_files, att_files, nopos_file
    np.save(out / "offsets.npy", offsets, allow_pickle=False)
    np.save(out / "special.npy", special, allow_pickle=False)
    np.save(out / "word_ids.npy", word_ids, allow_pickle=False)
    if attention:
        np.save(out / "attention_offsets.npy", att_offsets, allow_pickle=False)
    with open(out / "units.jsonl", "w", encoding="utf-8") as f:
        for u in units:
            f.write(json.dumps(u, ensure_ascii=False) + "\n")
    files = {p.name: {"bytes": p.stat().st_size, "crc32": _crc(p)} for p in sorted(out.iterdir())}
    meta = {"format": FORMAT_VERSION, "model": encoder.name, "fingerprint": encoder.fingerprint(),
            "num_layers": L, "num_heads": H, "hidden_size": D, "dtype": dtype, "n_sentences": len(encoded),
            "n_truncated": int(sum(e.truncated for e in encoded)), "hidden": hidden, "attention": attention,
            "no_position": bool(no_position), "pooling": pooling, "attention_from": attention_from,
            "segment_ids": segment_ids, "max_length": min(max_length or encoder.max_length, encoder.max_length),
            "truncated": [e.index for e in encoded if e.truncated], "files": files, **extra_meta}
    (out / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")


def get_activations(encoder: Encoder, examples: Sequence[Example], *, cache_dir: str | os.PathLike | None = None,
                    use_cache: bool = True, hidden: bool = True, attention: bool = False, no_position: bool = False,
                    pooling: str = "mean", attention_from: str = "mean", max_length: int | None = None,
                    batch_size: int = 32, dtype: str = "float16", segment_ids: str = "standard") -> ActivationStore:
    """The activations of ``examples``, from the cache when an identical request was made before.

    The key fingerprints the model (name and weights), tokenizer, inputs, pooling, max length and options, so
    only a truly identical request is served from disk. With ``use_cache=False`` the store lives in a
    temporary folder for as long as the returned object.
    """
    options = dict(hidden=hidden, attention=attention, no_position=no_position, pooling=pooling,
                   attention_from=attention_from, dtype=dtype, segment_ids=segment_ids,
                   max_length=min(max_length or encoder.max_length, encoder.max_length))
    kwargs = dict(options, batch_size=batch_size)
    if not use_cache:
        tmp = tempfile.TemporaryDirectory(prefix="probekit-")
        return ActivationStore(write_store(encoder, examples, Path(tmp.name) / "store", **kwargs), _tmp=tmp)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = root / cache_key(encoder, examples, options)
    if (entry / "meta.json").is_file():
        try:
            store = ActivationStore(entry)
            problem = store.verify()
        except (ValueError, OSError, KeyError, json.JSONDecodeError) as exc:
            problem = f"unreadable ({exc.__class__.__name__})"
        if problem is None:
            return store
        print(f"probekit: warning: cache entry {entry} is damaged ({problem}); recomputing", file=sys.stderr)
        shutil.rmtree(entry, ignore_errors=True)
    elif entry.exists():
        shutil.rmtree(entry, ignore_errors=True)
    return ActivationStore(write_store(encoder, examples, entry, **kwargs))
