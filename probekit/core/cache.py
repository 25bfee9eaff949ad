"""Word-level activations on disk: the on-disk format, and the fingerprinted cache built on it.

A store is a folder readable with numpy alone (``allow_pickle=False``) plus one JSON file:

- ``meta.json``        shapes, dtype, options, per-file checksums; ``units.jsonl`` the units of each sentence
- ``offsets.npy``      int64 [N+1]: sentence i owns rows ``offsets[i]:offsets[i+1]`` of every hidden file
- ``hidden_LL.npy``    [total_units, D] for layer LL (00 = embeddings … L), one file per layer
- ``no_position.npy``  [total_units, D] embedding output with position embeddings zeroed (if asked)
- ``attention_LL.npy`` flat float array for layer LL (01 … L); sentence i's [H, U_i, U_i] block starts at
  ``attention_offsets.npy[i]``
- ``special.npy`` / ``word_ids.npy`` per-unit flags / word indices, aligned with the hidden rows

- ``meta.json.sha256``  the checksum of ``meta.json``, written last: an entry without it is incomplete

Writes go to a temporary folder renamed into place, so a killed run leaves no half-written entry. Nothing
invalid is stored: the request is checked before any work and the filled store before the rename (every
sentence extracted, finite states, attention rows summing to 1). A damaged entry (any file, ``meta.json``
included) is reported in one line and recomputed; a read-only cache folder is a warning and the run goes on
without the cache; a full disk is one :class:`UserError` naming the path, with the partial entry removed.
"""
from __future__ import annotations

import errno
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

from probekit.core import checks
from probekit.core.alignment import ATTENTION_FROM, POOLINGS
from probekit.core.encoder import Encoder
from probekit.core.errors import UserError
from probekit.core.examples import Example
from probekit.core.extraction import SEGMENT_IDS, WINDOW_BATCHES, encode_windows, extract
from probekit.core.npyfiles import NpyWriter

FORMAT_VERSION = 1
DTYPES = ("float16", "float32")
CHECKSUM = "meta.json.sha256"
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = {errno.EACCES, errno.EPERM, errno.EROFS}


class NotWritable(UserError):
    """The cache folder cannot be written (read-only, no permission): callers may go on without the cache."""


def check_request(*, batch_size, max_length, dtype, pooling, attention_from, segment_ids) -> None:
    """Refuse a request that would store garbage (``batch_size=-1`` extracts nothing), before any work."""
    checks.positive("batch_size", batch_size)
    checks.max_length(max_length)
    checks.choice("dtype", dtype, DTYPES)
    checks.choice("pooling", pooling, POOLINGS)
    checks.choice("attention_from", attention_from, ATTENTION_FROM)
    checks.choice("segment_ids", segment_ids, SEGMENT_IDS)


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
        """None if every file (``meta.json`` included) matches its checksum and the arrays fit together, else
        what is wrong."""
        return entry_problem(self.path) or self._structure_problem()

    def _structure_problem(self) -> str | None:
        """Shapes that must agree with each other and with ``meta.json`` (cheap: headers only)."""
        n, total = len(self), int(self.offsets[-1]) if len(self.offsets) else -1
        counts = np.diff(self.offsets)
        if len(self.offsets) != self.meta["n_sentences"] + 1 or (n and (self.offsets[0] != 0 or counts.min() < 1)):
            return "offsets.npy does not match the sentences"
        if len(self.units) != n or any(len(u) != c for u, c in zip(self.units, counts.tolist())):
            return "units.jsonl does not match offsets.npy"
        if self.special.shape != (total,) or self.word_ids.shape != (total,):
            return "special.npy or word_ids.npy does not match offsets.npy"
        if self.meta["hidden"] and total:
            for layer in range(self.num_layers + 1):
                if self.hidden(layer).shape != (total, int(self.meta["hidden_size"])):
                    return f"hidden_{layer:02d}.npy has the wrong shape"
        if self.meta["attention"] and total:
            size = int(self._att_offsets[-1])
            if len(self._att_offsets) != n + 1 or any(f.shape != (size,) for f in self._attention_files()):
                return "the attention files do not match offsets.npy"
        return None


def expected_files(meta: dict) -> list[str]:
    """Every file an entry described by ``meta`` must have (a dropped layer is a damaged entry)."""
    L = int(meta["num_layers"])
    names = ["offsets.npy", "special.npy", "word_ids.npy", "units.jsonl"]
    if meta["hidden"]:
        names += [f"hidden_{l:02d}.npy" for l in range(L + 1)]
    if meta["attention"]:
        names += ["attention_offsets.npy"] + [f"attention_{l:02d}.npy" for l in range(1, L + 1)]
    if meta["no_position"] and meta["n_sentences"]:
        names.append("no_position.npy")
    return names


def entry_problem(path: str | os.PathLike) -> str | None:
    """What is wrong with the files of the entry at ``path`` (None if nothing), checked without parsing any
    ``.npy`` header: ``meta.json`` against ``meta.json.sha256``, then every file against ``meta.json``."""
    path = Path(path)
    if not (path / CHECKSUM).is_file():
        return f"{CHECKSUM} is missing (incomplete, or written by an older probekit)"
    if not (path / "meta.json").is_file():
        return "meta.json is missing"
    raw = (path / "meta.json").read_bytes()
    if hashlib.sha256(raw).hexdigest() != (path / CHECKSUM).read_text(encoding="ascii", errors="replace").strip():
        return "meta.json does not match its checksum"
    meta = json.loads(raw)
    files = meta["files"]
    for name in expected_files(meta):
        if name not in files:
            return f"{name} is not listed in meta.json"
    for name, info in files.items():
        p = path / name
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
    """Extract and write a store at ``path`` atomically (temporary sibling folder, then rename).

    Raises :class:`NotWritable` when ``path``'s folder cannot be written, and :class:`UserError` naming the
    path on a full disk; either way no temporary folder is left behind.
    """
    check_request(batch_size=batch_size, max_length=max_length, dtype=dtype, pooling=pooling,
                  attention_from=attention_from, segment_ids=segment_ids)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    except OSError as exc:
        raise _disk_error(exc, path) from None
    try:
        _fill(encoder, examples, tmp, hidden, attention, no_position, pooling, attention_from, max_length,
              batch_size, dtype, segment_ids, extra_meta or {})
        try:
            os.rename(tmp, path)
        except OSError:
            if path.is_dir() and entry_problem(path) is None:  # someone else finished the same entry first
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                shutil.rmtree(path, ignore_errors=True)
                os.rename(tmp, path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _disk_error(exc, path) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _disk_error(exc: OSError, path: Path) -> Exception:
    """The one-line error for a disk fault while writing the store at ``path`` (other errors pass as they are)."""
    if exc.errno in _READ_ONLY:
        return NotWritable(f"cannot write activations to {exc.filename or path.parent}: {exc.strerror}")
    if exc.errno in _DISK_FULL:
        return UserError(f"cannot write activations to {path}: {exc.strerror} (the partial files were removed)")
    return exc


def _check_activations(act, n_units: int, source: str, encoder: Encoder, dtype: str) -> None:
    """Refuse what must never be stored: a sentence without units, non-finite values, attention rows that do
    not sum to 1 (zero attention), all-zero hidden states."""
    if len(act.units) != n_units or n_units < 1:
        raise RuntimeError(f"{source}: extraction gave {len(act.units)} units, the alignment {n_units}; "
                           f"nothing was cached")
    for what, arr in (("hidden states", act.hidden), ("no-position embeddings", act.no_position),
                      ("attention", None if act.attention is None else act.attention.array)):
        if arr is not None and not np.isfinite(arr).all():
            hint = " (float16 overflows beyond ±65504: try --dtype float32)" if dtype == "float16" else ""
            raise UserError(f"{source}: model {encoder.name} gives non-finite {what}{hint}; nothing was cached")
    if act.hidden is not None and not act.hidden.any():
        raise RuntimeError(f"{source}: all hidden states are zero; nothing was cached")
    if act.attention is not None:
        sums = act.attention.array.sum(axis=-1, dtype=np.float32)
        if not np.allclose(sums, 1.0, atol=2e-2):
            raise RuntimeError(f"{source}: attention rows sum to {sums.min():.3g}…{sums.max():.3g}, not 1; "
                               f"nothing was cached")


def _fill(encoder, examples, out: Path, hidden, attention, no_position, pooling, attention_from, max_length,
          batch_size, dtype, segment_ids, extra_meta) -> None:
    """Tokenise in windows (units, flags and sizes), then extract and write each sentence at its place.

    Memory stays flat in corpus size: per sentence only its sizes are kept, and the arrays are written by
    position (:class:`~probekit.core.npyfiles.NpyWriter`), never held or mapped whole.
    """
    counts, lengths, truncated, special, word_ids = [], [], [], [], []
    with open(out / "units.jsonl", "w", encoding="utf-8") as f:
        for window in encode_windows(encoder, examples, window=WINDOW_BATCHES * batch_size, max_length=max_length,
                                     segment_ids=segment_ids):
            for e in window:
                al = e.alignment
                counts.append(al.n_units)
                lengths.append(e.length)
                special.append(np.asarray(al.special, dtype=bool))
                word_ids.append(np.asarray(al.word_ids, dtype=np.int64))
                f.write(json.dumps(al.units, ensure_ascii=False) + "\n")
                if e.truncated:
                    truncated.append(e.index)
    counts = np.array(counts, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    total = int(offsets[-1])
    L, H, D = encoder.num_layers, encoder.num_heads, encoder.hidden_size
    np_dtype = np.dtype(dtype)
    att_offsets = np.concatenate([[0], np.cumsum(H * counts * counts)]).astype(np.int64)
    writers: list[NpyWriter] = []
    try:
        hid_files = [NpyWriter(out / f"hidden_{l:02d}.npy", np_dtype, (total, D)) for l in range(L + 1) if hidden]
        att_files = [NpyWriter(out / f"attention_{l:02d}.npy", np_dtype, (int(att_offsets[-1]),))
                     for l in range(1, L + 1) if attention]
        writers, nopos_file = hid_files + att_files, None
        seen = np.zeros(len(counts), dtype=bool)
        for act in extract(encoder, examples, hidden=hidden, attention=attention, pooling=pooling,
                           attention_from=attention_from, batch_size=batch_size, no_position=no_position,
                           max_length=max_length, segment_ids=segment_ids, lengths=lengths, dtype=dtype):
            i = act.index
            _check_activations(act, int(counts[i]), examples[i].meta.get("source", f"input {i + 1}"), encoder,
                               dtype)
            seen[i] = True
            for l, f in enumerate(hid_files):
                f.write(int(offsets[i]), act.hidden[l])
            for l, f in enumerate(att_files):
                f.write(int(att_offsets[i]), act.attention.array[l].reshape(-1))
            if no_position:
                if nopos_file is None:
                    nopos_file = NpyWriter(out / "no_position.npy", np_dtype, (total, act.no_position.shape[-1]))
                    writers.append(nopos_file)
                nopos_file.write(int(offsets[i]), act.no_position)
    finally:
        for f in writers:
            f.close()
    if not seen.all():
        raise RuntimeError(f"extraction skipped {int((~seen).sum())} of {len(seen)} inputs (first: input "
                           f"{int(np.flatnonzero(~seen)[0]) + 1}); nothing was cached")
    special = np.concatenate(special) if special else np.zeros(0, dtype=bool)
    word_ids = np.concatenate(word_ids) if word_ids else np.zeros(0, dtype=np.int64)
    np.save(out / "offsets.npy", offsets, allow_pickle=False)
    np.save(out / "special.npy", special, allow_pickle=False)
    np.save(out / "word_ids.npy", word_ids, allow_pickle=False)
    if attention:
        np.save(out / "attention_offsets.npy", att_offsets, allow_pickle=False)
    files = {p.name: {"bytes": p.stat().st_size, "crc32": _crc(p)} for p in sorted(out.iterdir())}
    meta = {"format": FORMAT_VERSION, "model": encoder.name, "fingerprint": encoder.fingerprint(),
            "num_layers": L, "num_heads": H, "hidden_size": D, "dtype": dtype, "n_sentences": len(counts),
            "n_truncated": len(truncated), "hidden": hidden, "attention": attention,
            "no_position": bool(no_position), "pooling": pooling, "attention_from": attention_from,
            "segment_ids": segment_ids, "max_length": min(max_length or encoder.max_length, encoder.max_length),
            "truncated": truncated, "files": files, **extra_meta}
    raw = json.dumps(meta, indent=1).encode("utf-8")
    (out / "meta.json").write_bytes(raw)
    (out / CHECKSUM).write_text(hashlib.sha256(raw).hexdigest() + "\n", encoding="ascii")  # last: complete


def _temporary_store(encoder: Encoder, examples: Sequence[Example], kwargs: dict) -> ActivationStore:
    """A store in a temporary folder that lives as long as the returned object (``use_cache=False``)."""
    try:
        tmp = tempfile.TemporaryDirectory(prefix="probekit-")
    except OSError as exc:
        raise UserError(f"cannot create a temporary folder in {tempfile.gettempdir()}: {exc.strerror}") from None
    try:
        return ActivationStore(write_store(encoder, examples, Path(tmp.name) / "store", **kwargs), _tmp=tmp)
    except BaseException:
        tmp.cleanup()
        raise


def _open_entry(entry: Path) -> tuple[ActivationStore | None, str | None]:
    """(store, None) for a sound entry, else (None, what is wrong): any failure to read it counts as damage."""
    try:
        problem = entry_problem(entry)
        if problem is None:
            store = ActivationStore(entry)
            problem = store._structure_problem()
            if problem is None:
                return store, None
    except Exception as exc:  # noqa: BLE001 - a damaged file can fail in any way; the entry is then recomputed
        problem = f"unreadable: {exc.__class__.__name__}"
    return None, problem


def get_activations(encoder: Encoder, examples: Sequence[Example], *, cache_dir: str | os.PathLike | None = None,
                    use_cache: bool = True, hidden: bool = True, attention: bool = False, no_position: bool = False,
                    pooling: str = "mean", attention_from: str = "mean", max_length: int | None = None,
                    batch_size: int = 32, dtype: str = "float16", segment_ids: str = "standard") -> ActivationStore:
    """The activations of ``examples``, from the cache when an identical request was made before.

    The key fingerprints the model (name and weights), tokenizer, inputs, pooling, max length and options, so
    only a truly identical request is served from disk. With ``use_cache=False`` the store lives in a
    temporary folder for as long as the returned object; so does it, after one warning, when the cache folder
    cannot be written.
    """
    check_request(batch_size=batch_size, max_length=max_length, dtype=dtype, pooling=pooling,
                  attention_from=attention_from, segment_ids=segment_ids)
    options = dict(hidden=hidden, attention=attention, no_position=no_position, pooling=pooling,
                   attention_from=attention_from, dtype=dtype, segment_ids=segment_ids,
                   max_length=min(max_length or encoder.max_length, encoder.max_length))
    kwargs = dict(options, batch_size=batch_size)
    if not use_cache:
        return _temporary_store(encoder, examples, kwargs)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = root / cache_key(encoder, examples, options)
    if entry.exists():
        store, problem = _open_entry(entry)
        if store is not None:
            return store
        print(f"probekit: warning: cache entry {entry} is damaged ({problem}); recomputing", file=sys.stderr)
        shutil.rmtree(entry, ignore_errors=True)
    try:
        return ActivationStore(write_store(encoder, examples, entry, **kwargs))
    except NotWritable as exc:
        print(f"probekit: warning: {exc}; running without the cache", file=sys.stderr)
        return _temporary_store(encoder, examples, kwargs)
