"""Incremental snapshots (delta.py, the store's base versions): a delta on a full snapshot
rebuilds the model exactly, stores much less than the whole, and is never read without its base."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from operators.model import OnlineRanker
from operators.model.delta import Increments, apply, compose, diff, encode
from operators.model.snapshot_store import MemoryTables, SnapshotStore
from tests.unit.test_updates import SMALL, run, same_model, stream

# A catalogue wider than the events between two snapshots touch (test_updates.stream's 120
# items are almost all touched by 200 events: no delta pays there).
EVENTS = stream(1_200, users=400, items=3_000, seed=5)
# The regression's dense head (refit whole every refit_every events) bounded as at scale, where
# it is a small part of the model: 2,048 of 100,000 items.
WIDE = dataclasses.replace(SMALL, max_dense_items=256)


def _ranker_after(n: int) -> OnlineRanker:
    ranker = OnlineRanker(WIDE)
    run(EVENTS[:n], ranker)
    return ranker


def test_a_delta_on_an_earlier_state_rebuilds_the_later_model_exactly() -> None:
    earlier, later = _ranker_after(1_000), _ranker_after(1_200)
    blob = encode(earlier.cut().values, later.cut().values)
    rebuilt = OnlineRanker.restore(compose(earlier.snapshot(), blob), WIDE)
    same_model(rebuilt, OnlineRanker.restore(later.snapshot(), WIDE))    # row capacity aside, as a full restore
    assert rebuilt.digest() == later.digest()
    # 200 events touch a fraction of the rows: the delta is well under the whole
    assert len(blob) < len(later.snapshot()) / 2


def test_rows_are_compared_as_bytes_and_every_kind_of_change_survives() -> None:
    base = {"rows": torch.tensor([[0.0, 1.0], [math.nan, 2.0], [3.0, 4.0]]), "ids": ["a", "b"],
            "scalar": 0.0, "kept": {"x": 1}, "gone": 5, "grid": torch.zeros(2, 2), "typed": torch.zeros(3)}
    new = {"rows": torch.tensor([[-0.0, 1.0], [math.nan, 2.0]]),           # shrank; 0.0 -> -0.0 differs
           "ids": ["a", "c"], "scalar": -0.0, "kept": {"x": 1, "y": [1, 2]}, "added": torch.ones(1),
           "grid": torch.zeros(2, 3), "typed": torch.zeros(3, dtype=torch.int32)}
    delta = diff(base, new)
    items = delta["items"]
    assert items["rows"]["delta"] == "cells" and items["rows"]["flat"].tolist() == [0]    # NaN row unchanged
    assert items["ids"] == {"delta": "value", "value": ["a", "c"]}                        # not an append
    assert items["scalar"]["delta"] == "value"                                            # -0.0 is not 0.0
    assert items["kept"]["items"]["x"] == {"delta": "same"}
    assert items["grid"]["delta"] == items["typed"]["delta"] == "value"                  # shape / dtype changed
    rebuilt = apply(base, delta)
    assert set(rebuilt) == set(new)                                                       # "gone" is gone
    assert torch.equal(rebuilt["rows"].view(torch.int32), new["rows"].view(torch.int32))
    assert math.copysign(1.0, rebuilt["scalar"]) == -1.0
    assert rebuilt["kept"] == {"x": 1, "y": [1, 2]} and torch.equal(rebuilt["added"], torch.ones(1))
    assert rebuilt["typed"].dtype == torch.int32


def test_scattered_cells_are_stored_as_cells_and_whole_rows_as_rows() -> None:
    base = {"gram": torch.zeros(50, 50, dtype=torch.float64), "table": torch.zeros(50, 50)}
    new = {"gram": torch.zeros(60, 50, dtype=torch.float64), "table": torch.zeros(55, 50)}
    new["gram"][torch.arange(40), torch.arange(40) % 7] = 1.0      # one cell in each of 40 rows, and 10 new rows
    new["table"][[3, 9]] = 2.0                                      # two whole rows, and 5 new rows
    items = diff(base, new)["items"]
    assert items["gram"]["delta"] == "cells" and len(items["gram"]["flat"]) == 40
    assert items["gram"]["tail"].shape == (10, 50)
    assert items["table"]["delta"] == "rows" and items["table"]["index"].tolist() == [3, 9, 50, 51, 52, 53, 54]
    rebuilt = apply(base, diff(base, new))
    assert all(torch.equal(rebuilt[k], new[k]) and rebuilt[k].dtype == new[k].dtype for k in new)
    shrunk = {"gram": new["gram"][:20].clone(), "table": new["table"][:4].clone()}
    assert all(torch.equal(apply(new, diff(new, shrunk))[k], shrunk[k]) for k in shrunk)


def test_a_blob_that_is_not_a_delta_is_refused() -> None:
    full = _ranker_after(50).snapshot()
    with pytest.raises(ValueError, match="not an incremental snapshot"):
        compose(full, full)


def test_increments_write_a_full_snapshot_when_the_base_is_gone_or_the_delta_does_not_pay() -> None:
    inc = Increments(full_every=10)
    first = {"rows": torch.zeros(1_000, 4)}
    inc.written(1, first, size=len(encode({}, first)), base=-1)
    touched = {"rows": first["rows"].clone()}
    touched["rows"][3] = 1.0
    assert inc.blob(touched, lambda: b"whole", lambda v: True)[1] == 1
    assert inc.blob(touched, lambda: b"whole", lambda v: False) == (b"whole", -1)         # base pruned or lost
    everywhere = {"rows": torch.ones(1_000, 4)}
    assert inc.blob(everywhere, lambda: b"whole", lambda v: True) == (b"whole", -1)       # delta as big as the whole
    with pytest.raises(ValueError):
        Increments(full_every=0)


def _store_with_a_delta(older: OnlineRanker | None = None) -> tuple[SnapshotStore, OnlineRanker]:
    """A store holding (``older`` as a full snapshot,) a full snapshot at 1,000 events, and a
    delta on it at 1,200."""
    store = SnapshotStore(MemoryTables(), chunk_bytes=4_096)
    if older is not None:
        store.save(older.snapshot(), {0: older.learned_events - 1}, older.learned_events, "clicks", "L",
                   digest=older.digest())
    earlier, later = _ranker_after(1_000), _ranker_after(1_200)
    full = store.save(earlier.snapshot(), {0: 999}, 1_000, "clicks", "L", digest=earlier.digest())
    store.save(encode(earlier.cut().values, later.cut().values), {0: 1_199}, 1_200, "clicks", "L",
               digest=later.digest(), base=full.version)
    return store, later


def test_the_store_composes_a_delta_with_its_base_and_prunes_around_it() -> None:
    store, later = _store_with_a_delta()
    newest = store.list()[0]
    assert newest.base == 1 and store.complete(newest)
    chosen = store.load_for(0, 1)
    assert chosen is not None and chosen[0] == newest
    assert OnlineRanker.restore(chosen[1], WIDE).digest() == later.digest()
    assert store.prune(keep=1) == []               # the newest is a delta: its base stays
    assert [i.version for i in store.list()] == [2, 1]


def test_a_delta_whose_base_is_gone_is_never_read_and_the_start_falls_back() -> None:
    older = _ranker_after(400)
    store, _ = _store_with_a_delta(older)
    store.delete([2])                              # the delta's base (by hand, or a lost partition)
    newest = store.list()[0]
    assert newest.base == 2 and not store.complete(newest) and store.read(newest, quiet=True) is None
    chosen = store.load_for(0, 1)
    assert chosen is not None and chosen[0].version == 1
    assert OnlineRanker.restore(chosen[1], WIDE).digest() == older.digest()
