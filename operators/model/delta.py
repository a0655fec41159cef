"""Incremental snapshots: a model state as the rows that changed since a full one.

Between two snapshots an online model touches few of its rows: the items that were learned
(their neighbour rows, embedding rows, counts), plus whatever grew (new items are new rows
at the end). Everything else is byte for byte what the last full snapshot holds. ``diff``
keeps only what differs from a base state; ``apply`` rebuilds the state from the base and
the delta, exactly (rows are compared as bytes, so ``-0.0`` and NaN payloads survive), so a
restored model has the digest the snapshot's manifest names (lifecycle.py checks it).

A delta is a tree of tagged nodes, never an ambiguous plain value:

- ``same``: the value equals the base's;
- ``rows``: a tensor whose leading dimension is rows: the new length, and the indices and
  contents of the rows that differ from the base's (or are past its end);
- ``cells``: the same tensor, when fewer cells than rows' worth changed: the flat indices and
  values of the cells that differ, and the rows past the base's end;
- ``append``: a list that extends the base's (the catalogue's item ids);
- ``dict``: a dict, each value a node (keys the base lacks hold ``value`` nodes);
- ``value``: anything else, stored whole.

>>> base = {"rows": torch.zeros(4, 2), "ids": ["a", "b"], "n": 3}
>>> new = {"rows": torch.zeros(5, 2), "ids": ["a", "b", "c"], "n": 3}
>>> new["rows"][1] = 7.0
>>> d = diff(base, new)
>>> d["items"]["rows"]["index"].tolist(), d["items"]["ids"], d["items"]["n"]
([1, 4], {'delta': 'append', 'tail': ['c']}, {'delta': 'same'})
>>> rebuilt = apply(base, d)
>>> torch.equal(rebuilt["rows"], new["rows"]), rebuilt["ids"], rebuilt["n"]
(True, ['a', 'b', 'c'], 3)
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

FORMAT = "delta-1"


def diff(base: Any, new: Any) -> dict[str, Any]:
    """The node that turns ``base`` into ``new`` (see the module docstring)."""
    if isinstance(new, dict):
        if not isinstance(base, dict):
            return {"delta": "value", "value": new}
        return {"delta": "dict", "items": {k: diff(base[k], v) if k in base else {"delta": "value", "value": v}
                                           for k, v in new.items()}}
    if isinstance(new, torch.Tensor):
        return _tensor_diff(base, new)
    if isinstance(new, list) and isinstance(base, list) and len(new) > len(base) and _same(new[:len(base)], base):
        return {"delta": "append", "tail": new[len(base):]}
    return {"delta": "same"} if _same(new, base) else {"delta": "value", "value": new}


def apply(base: Any, node: dict[str, Any]) -> Any:
    """``new`` again, from ``base`` and ``diff(base, new)``."""
    kind = node["delta"]
    if kind == "same":
        return base
    if kind == "value":
        return node["value"]
    if kind == "append":
        return [*base, *node["tail"]]
    if kind == "dict":
        return {k: apply(base.get(k) if isinstance(base, dict) else None, child)
                for k, child in node["items"].items()}
    if kind == "cells":
        shape = (int(node["length"]), *base.shape[1:])
        out = torch.empty(shape, dtype=base.dtype)
        common = shape[0] - node["tail"].shape[0]
        out[:common] = base[:common]
        out[:common].view(-1)[node["flat"]] = node["values"]
        out[common:] = node["tail"]
        return out
    if kind == "rows":
        shape = (int(node["length"]), *base.shape[1:])
        out = torch.empty(shape, dtype=base.dtype)
        keep = min(shape[0], base.shape[0])
        out[:keep] = base[:keep]
        out[node["index"]] = node["rows"]
        return out
    raise ValueError(f"not a snapshot delta node: {kind!r}")


def encode(base: dict[str, Any], new: dict[str, Any]) -> bytes:
    """The stored form of ``diff(base, new)`` (torch.save, read back with weights_only)."""
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "delta": diff(base, new)}, buf)
    return buf.getvalue()


def compose(base_blob: bytes, delta_blob: bytes) -> bytes:
    """A full snapshot blob from its base's blob and an ``encode``d delta on it."""
    delta = torch.load(io.BytesIO(delta_blob), weights_only=True)
    if not isinstance(delta, dict) or delta.get("format") != FORMAT:
        raise ValueError("not an incremental snapshot (no delta format marker)")
    base = torch.load(io.BytesIO(base_blob), weights_only=True)
    buf = io.BytesIO()
    torch.save(apply(base, delta["delta"]), buf)
    return buf.getvalue()


def _tensor_diff(base: Any, new: torch.Tensor) -> dict[str, Any]:
    whole = {"delta": "value", "value": new}
    if (not isinstance(base, torch.Tensor) or new.dim() == 0 or base.dim() != new.dim()
            or base.dtype != new.dtype or base.shape[1:] != new.shape[1:]):
        return whole
    try:
        a, b = _elements(base), _elements(new)
    except (TypeError, RuntimeError, ValueError, KeyError):     # a dtype numpy cannot view (bfloat16, complex)
        return whole
    common = min(a.shape[0], b.shape[0])
    differs = a[:common] != b[:common]
    rows = np.flatnonzero(differs.any(axis=1)) if b.shape[1] else np.zeros(0, np.int64)
    grown = torch.from_numpy(np.arange(common, b.shape[0], dtype=np.int64))
    if rows.size == 0 and new.shape == base.shape:
        return {"delta": "same"}
    cells = np.flatnonzero(differs)
    width = b.shape[1] * b.itemsize
    if cells.size * (8 + b.itemsize) < rows.size * (8 + width):
        # scattered changes (a Gram matrix: each event adds to a few cells of many rows)
        return {"delta": "cells", "length": int(new.shape[0]), "flat": torch.from_numpy(cells.astype(np.int64)),
                "values": new[:common].reshape(-1)[cells].clone(), "tail": new[common:].clone()}
    index = torch.cat([torch.from_numpy(rows.astype(np.int64)), grown])
    return {"delta": "rows", "length": int(new.shape[0]), "index": index, "rows": new[index].clone()}


def _elements(t: torch.Tensor) -> np.ndarray:
    """The tensor as rows of unsigned integers of its element size: compared exactly, bit for
    bit (0.0 and -0.0 differ, a NaN equals itself)."""
    array = t.detach().contiguous().numpy()
    unsigned = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[array.itemsize]
    return array.view(unsigned).reshape(array.shape[0], -1)


def _same(a: object, b: object) -> bool:
    """Equal plain values (scalars, strings and containers of them), exactly: ``repr`` tells
    1 from 1.0 and True, and 0.0 from -0.0, where ``==`` does not. Tensors are never "same"
    here (their repr abbreviates); they go through ``_tensor_diff``."""
    return _plain(a) and type(a) is type(b) and repr(a) == repr(b)


def _plain(value: object) -> bool:
    if isinstance(value, (str, int, float, bool, type(None))):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    return False


class Increments:
    """Which snapshots a writer stores whole and which as a delta on its last full one.

    A delta is written while the last full snapshot is still complete in the store, fewer than
    ``full_every`` snapshots have been written since it, and the delta is at most ``max_share``
    of the full one's size (a delta that large does not pay: the model changed almost
    everywhere, or rows moved). ``full_every`` 1 writes every snapshot whole. The writer keeps
    the last full state (one more copy of the model in memory) to compare against.

    >>> inc = Increments(full_every=3)
    >>> state = {"rows": torch.zeros(100, 4)}
    >>> blob, base = inc.blob(state, lambda: b"full", lambda version: True)
    >>> blob, base
    (b'full', -1)
    >>> inc.written(7, state, size=6400, base=base)
    >>> state = {"rows": state["rows"].clone()}
    >>> state["rows"][5] = 1.0
    >>> blob, base = inc.blob(state, lambda: b"full", lambda version: True)
    >>> base, len(blob) < 6400
    (7, True)
    >>> inc.written(8, state, size=len(blob), base=base)
    >>> inc.written(9, state, size=len(blob), base=inc.blob(state, lambda: b"full", lambda version: True)[1])
    >>> inc.blob(state, lambda: b"full", lambda version: True)[1]     # the third since the full one
    -1
    """

    def __init__(self, full_every: int = 1, max_share: float = 0.5) -> None:
        if full_every < 1:
            raise ValueError("full_every must be at least 1 (1: every snapshot whole)")
        self.full_every, self.max_share = full_every, max_share
        self._base: tuple[int, dict[str, Any], int] | None = None     # version, state, blob size
        self._since_full = 0

    def blob(self, values: dict[str, Any], full: Callable[[], bytes],
             complete: Callable[[int], bool]) -> tuple[bytes, int]:
        """The bytes to store for the state ``values``, and the full version they are a delta
        on (-1: ``full()``, the whole state)."""
        if self._base is not None and self._since_full + 1 < self.full_every:
            version, base, size = self._base
            if complete(version):
                delta = encode(base, values)
                if len(delta) <= self.max_share * size:
                    return delta, version
        return full(), -1

    def written(self, version: int, values: dict[str, Any], size: int, base: int) -> None:
        """Record a stored snapshot (``base`` as ``blob`` returned it)."""
        if base < 0:
            self._base, self._since_full = (version, values, size), 0
        else:
            self._since_full += 1
