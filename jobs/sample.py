"""Write a synthetic interaction log in MovieLens ``u.data`` layout (user, item, rating, ts).

Used by the demo when ../shared/data/ml-100k is absent, by tests and by benchmarks.

    python -m jobs.sample OUT [--events 20000] [--users 300] [--items 400] [--seed 1]
                              [--clusters C] [--days D] [--format udata|parquet]

Each line is ``user<TAB>item<TAB>rating<TAB>ts`` (user in 1..users, item in 1..items, rating
in 1..5, ts in epoch seconds from 880,000,000 as in ml-100k), in strictly increasing ts order.
With ``--format parquet`` (the default for an OUT ending in ``.parquet``) the same events are
Parquet rows of jobs/parquet_io.EVENTS, as ``jobs.replay`` turns a u.data line into an event
(``rating`` events, value = stars, ts in milliseconds), a row group per chunk.
The same arguments give a byte-identical file. Memory depends on --users and --items, not on
--events: the log is simulated in blocks of time and written block by block.

The generative model:

- Items sit on a ring (a random order of the catalogue) and each item has an appeal that is a
  power law of its global rank (Zipf, exponent 1).
- Clusters of taste: cluster ``c`` prefers the items in a window of ``items / C`` consecutive
  ring positions, and picks inside it in proportion to appeal (its own popularity order). The
  windows rotate along the ring over the log's time (one window width over the whole log), so
  what a cluster likes drifts. 20 % of users move to another cluster at a random time.
- Users have power-law activity (rank ** -0.7, capped so that the busiest user still fits in
  the time span), so a few users are far more active than most. In the output the
  rank-frequency slope is about -0.9 for items and -0.55 for users.
- Events come in sessions: the length is a power law in 1..50 (mean about 5.5); events in a
  session are seconds to minutes apart (log-normal, median 30 s, at least 2 s, at most 10 min);
  one user's sessions are at least 40 min (plus a random pause) apart, more than the job's
  30 min session gap, and otherwise start at random times, more often in the evening, so
  that most users' sessions are hours to days apart.
- Inside a session: the first item comes from the session's cluster (the user's own, 90 %) or
  from global popularity (20 % of the items that start afresh); a later item is, half of the
  time, a neighbour of the previous one on the ring (1..3 positions, chosen by appeal), which
  gives sequence models something to learn.
- Rating: 2.75 plus a per-user bias, +1 when the item is in the window of the user's own
  cluster at that time and +0.4 for a globally popular item, with noise, rounded into 1..5
  (mean about 3.5, as in ml-100k). A user may meet an item again, as in a click log.

Timestamps are made strictly increasing (a tie moves the later events on by a second; at 10M
events in a year, by 19 s at most), so that event-time order is one total order in every
replay; as a consequence no user can have more than 60 events in any 60 seconds, far below
the job's bot guard (300 a minute). The default span is 60 s per event, at least one hour and
at most a year; longer only when a year leaves less than three seconds per event or cannot
hold the users' sessions, and a --days that short is refused.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

START_TS = 880_000_000               # mid-November 1997, near the start of ml-100k
HOUR = 3_600
DAY = 86_400
SECONDS_PER_EVENT = 60               # default span per event: the mean gap of the earlier generator
MAX_DEFAULT_DAYS = 365
MIN_SECONDS_PER_EVENT = 3            # keeps the tie-breaking shifts to a few seconds
EVENTS_PER_BLOCK = 50_000            # simulation block; bounds the memory, not the output

ITEM_ZIPF = 1.0                      # appeal = (global rank + 1) ** -ITEM_ZIPF
USER_ZIPF = 0.7                      # activity weight = (activity rank + 1) ** -USER_ZIPF
MAX_BUSY_SHARE = 0.25                # no user spends more than this share of the span in or between sessions
SESSION_MAX = 50
SESSION_ZIPF = 1.5                   # P(session length = L) ~ L ** -SESSION_ZIPF
GAP_MEDIAN_S = 30.0
GAP_SIGMA = 1.0
GAP_MIN_S = 2                        # within a session: at most 31 events in any minute
GAP_MAX_S = 600
GAP_MEAN_BOUND_S = 60                # above the clipped log-normal's mean (about 49 s)
REST_S = 2_400                       # between one user's sessions; the job splits sessions at 30 min...
REST_EXTRA_S = 1_200                 # ...plus an exponential extra pause of this mean
EVENING_PEAK_HOUR = 20               # UTC; the start rate swings +-60 % over the day
DIURNAL_SWING = 0.6

OWN_CLUSTER = 0.9                    # share of sessions in the user's own cluster
GLOBAL_SHARE = 0.2                   # share of fresh picks drawn from global popularity
WALK_SHARE = 0.5                     # share of later session events that step to a ring neighbour
WALK_REACH = 3
SWITCH_SHARE = 0.2                   # users who change cluster once
DRIFT_WIDTHS = 1.0                   # how far each cluster's window rotates over the log

RATING_BASE = 2.75
RATING_OWN = 1.0
RATING_HIT = 0.4
RATING_USER_SD = 0.4
RATING_NOISE_SD = 0.9
HIT_SHARE = 0.05                     # top share of items by appeal that counts as a global hit


def default_clusters(items: int) -> int:
    """Clusters for a catalogue: 8 for small ones, growing with the square root of its size.

    >>> [default_clusters(n) for n in (5, 120, 400, 100_000)]
    [5, 8, 8, 126]
    """
    return max(1, min(items, max(8, round(math.sqrt(items) / 2.5))))


def _session_lengths() -> tuple[FloatArray, float]:
    lengths = np.arange(1, SESSION_MAX + 1, dtype=np.float64)
    p = lengths ** -SESSION_ZIPF
    p /= p.sum()
    return np.cumsum(p), float((lengths * p).sum())


SESSION_CDF, MEAN_SESSION = _session_lengths()
SESSION_BUSY_S = (MEAN_SESSION - 1) * GAP_MEAN_BOUND_S + REST_S + REST_EXTRA_S    # a session and the rest after it


@dataclass(frozen=True)
class SampleSpec:
    """What to generate; ``clusters`` and ``days`` default to sizes scaled from the others.

    >>> spec = SampleSpec(events=20_000, users=300, items=400, seed=1)
    >>> spec.n_clusters, spec.span_s // DAY
    (8, 13)
    """

    events: int = 20_000
    users: int = 300
    items: int = 400
    seed: int = 1
    clusters: int | None = None
    days: float | None = None

    def __post_init__(self) -> None:
        if self.events < 0 or self.users < 1 or self.items < 1 or self.seed < 0:
            raise ValueError("need events >= 0, users >= 1, items >= 1 and seed >= 0")
        if self.clusters is not None and not 1 <= self.clusters <= self.items:
            raise ValueError("clusters must be in 1..items")
        if self.days is not None and self.days * DAY < self.min_span_s:
            raise ValueError(f"{self.days} days is too short for {self.events} events of {self.users} users; "
                             f"need at least {math.ceil(self.min_span_s / DAY)}")

    @property
    def n_clusters(self) -> int:
        return self.clusters if self.clusters is not None else default_clusters(self.items)

    @property
    def min_span_s(self) -> int:
        # Three seconds per event keeps tie-breaking local; the users together must fit their
        # sessions (and rests) into MAX_BUSY_SHARE of the span even if activity were uniform.
        busy = self.events / MEAN_SESSION * SESSION_BUSY_S / (MAX_BUSY_SHARE * self.users)
        return math.ceil(max(MIN_SECONDS_PER_EVENT * self.events, busy))

    @property
    def span_s(self) -> int:
        if self.days is not None:
            return max(1, round(self.days * DAY))
        default = min(SECONDS_PER_EVENT * self.events, MAX_DEFAULT_DAYS * DAY)
        return max(HOUR, default, self.min_span_s)


@dataclass(frozen=True)
class EventChunk:
    """Events in ts order, column by column (1-based user and item ids, ts in seconds)."""

    user: IntArray
    item: IntArray
    rating: IntArray
    ts: IntArray

    def __len__(self) -> int:
        return len(self.ts)

    def rows(self) -> list[tuple[int, int, int, int]]:
        return list(zip(self.user.tolist(), self.item.tolist(), self.rating.tolist(), self.ts.tolist(), strict=True))

    def udata(self) -> str:
        """The chunk as u.data lines.

        >>> one = np.array([1])
        >>> EventChunk(one, one * 7, one * 5, one * 880_000_000).udata()
        '1\\t7\\t5\\t880000000\\n'
        """
        table = np.stack([self.user, self.item, self.rating, self.ts], axis=1)
        return ("%d\t%d\t%d\t%d\n" * len(table)) % tuple(table.ravel().tolist())


class TasteModel:
    """The static part of the model: item ring and appeal, user clusters, activity and bias.

    Tests use it to read the hidden structure back (which cluster a user or an item is in at a
    time); the log itself comes from :class:`LogSimulator`.

    >>> model = TasteModel(SampleSpec(events=1_000, users=20, items=40, seed=3))
    >>> model.clusters, round(model.width), bool(model.user_cluster(np.array([1]), np.array([START_TS]))[0] >= 0)
    (8, 5, True)
    """

    def __init__(self, spec: SampleSpec) -> None:
        self.spec = spec
        self.clusters = spec.n_clusters
        self.span = spec.span_s
        n_items, n_users = spec.items, spec.users
        self.width = n_items / self.clusters
        rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(0,)))
        # Ring position -> item id and -> global popularity rank, two independent orders.
        self.ring_item = rng.permutation(n_items).astype(np.int64)
        self.item_pos = np.empty(n_items, dtype=np.int64)
        self.item_pos[self.ring_item] = np.arange(n_items)
        self.ring_rank = rng.permutation(n_items).astype(np.int64)
        self.appeal = (self.ring_rank + 1.0) ** -ITEM_ZIPF
        # Prefix sums over two laps of the ring, so a window that wraps is one slice.
        self.appeal_cum = np.concatenate([[0.0], np.cumsum(np.tile(self.appeal, 2))])
        self.hit = self.ring_rank < max(1, round(HIT_SHARE * n_items))

        self.home0 = rng.integers(0, self.clusters, n_users)
        switches = rng.random(n_users) < SWITCH_SHARE
        if self.clusters > 1:
            self.home1 = (self.home0 + rng.integers(1, self.clusters, n_users)) % self.clusters
        else:
            self.home1 = self.home0.copy()
        never = np.iinfo(np.int64).max
        self.switch_at = np.where(switches, START_TS + rng.integers(0, self.span, n_users), never)
        self.bias = rng.normal(0.0, RATING_USER_SD, n_users)
        activity_rank = rng.permutation(n_users)
        weight = _capped_power_law(n_users, spec.events, self.span)[activity_rank]
        self.activity_cum = np.cumsum(weight)

    def center(self, cluster: IntArray, ts: IntArray) -> FloatArray:
        """Ring position of a cluster's window centre at time ``ts`` (it rotates with time)."""
        frac = (ts - START_TS) / self.span
        return ((cluster + 0.5 + DRIFT_WIDTHS * frac) * self.width) % self.spec.items

    def user_cluster(self, user: IntArray, ts: IntArray) -> IntArray:
        """Home cluster of 1-based ``user`` ids at times ``ts``."""
        u = user - 1
        return np.where(ts >= self.switch_at[u], self.home1[u], self.home0[u])

    def item_cluster(self, item: IntArray, ts: IntArray) -> IntArray:
        """The cluster whose window holds 1-based ``item`` ids at times ``ts``."""
        shift = (ts - START_TS) / self.span * DRIFT_WIDTHS * self.width
        pos = (self.item_pos[item - 1] - shift) % self.spec.items
        return np.minimum((pos // self.width).astype(np.int64), self.clusters - 1)

    def in_window(self, pos: IntArray, cluster: IntArray, ts: IntArray) -> npt.NDArray[np.bool_]:
        n = self.spec.items
        d = np.abs(pos - self.center(cluster, ts)) % n
        return np.minimum(d, n - d) <= self.width / 2


def _capped_power_law(users: int, events: int, span: int) -> FloatArray:
    """Activity shares by rank, ``rank ** -USER_ZIPF`` with the top capped (water-filling) so the
    busiest user's expected sessions and rests fill at most MAX_BUSY_SHARE of the span."""
    x = np.arange(1, users + 1, dtype=np.float64) ** -USER_ZIPF
    sessions = max(events / MEAN_SESSION, 1e-9)
    cap = MAX_BUSY_SHARE * span / (sessions * SESSION_BUSY_S)
    if x[0] / x.sum() <= cap:
        return x / x.sum()
    # With the k largest capped, the rest scale by (1 - k cap) / tail(k); take the first k for
    # which the largest uncapped share is within the cap.
    tail = np.cumsum(x[::-1])[::-1]
    k = np.arange(users)
    ok = (1 - k * cap) * x / tail <= cap
    first = int(np.argmax(ok)) if ok.any() else users
    w = np.full(users, cap)
    if first < users:
        w[first:] = x[first:] * (1 - first * cap) / tail[first]
    return w / w.sum()


def _hour_weights(hours: int) -> FloatArray:
    hour_of_day = (START_TS // HOUR + np.arange(hours)) % 24
    return 1 + DIURNAL_SWING * np.cos(2 * np.pi * (hour_of_day - EVENING_PEAK_HOUR) / 24)


class LogSimulator:
    """Simulates the log block by block of time and yields it in ts order (see the module doc).

    >>> chunks = list(LogSimulator(SampleSpec(events=500, users=30, items=50, seed=2)).chunks())
    >>> sum(len(c) for c in chunks), all((np.diff(c.ts) > 0).all() for c in chunks)
    (500, True)
    """

    def __init__(self, spec: SampleSpec) -> None:
        self.spec = spec
        self.model = TasteModel(spec)

    def chunks(self) -> Iterator[EventChunk]:
        spec, model = self.spec, self.model
        hours = math.ceil(model.span / HOUR)
        hour_w = _hour_weights(hours)
        block_hours = max(1, min(hours, hours * EVENTS_PER_BLOCK // max(spec.events, 1)))
        starts = np.arange(0, hours, block_hours)
        block_w = np.add.reduceat(hour_w, starts)
        rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(1,)))
        per_block = rng.multinomial(spec.events, block_w / block_w.sum())

        # Events beyond the current block's end wait here (sessions that run over the edge,
        # and sessions pushed later by the same user's earlier ones).
        pending = _empty_columns()
        last_end = np.full(spec.users, np.iinfo(np.int64).min // 2, dtype=np.int64)
        last_ts = START_TS - 1
        for b, h0 in enumerate(starts.tolist()):
            h1 = min(hours, h0 + block_hours)
            block_rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(2, b)))
            fresh = self._block(block_rng, h0, hour_w[h0:h1], int(per_block[b]), last_end)
            merged = [np.concatenate([p, f]) for p, f in zip(pending, fresh, strict=True)]
            order = np.argsort(merged[3], kind="stable")
            merged = [col[order] for col in merged]
            cut = int(np.searchsorted(merged[3], START_TS + h1 * HOUR))
            pending = [col[cut:] for col in merged]
            if cut:
                chunk, last_ts = _emit([col[:cut] for col in merged], last_ts, model.ring_item)
                yield chunk
        if len(pending[3]):
            chunk, last_ts = _emit(pending, last_ts, model.ring_item)
            yield chunk

    def _block(self, rng: np.random.Generator, h0: int, hour_w: FloatArray, n: int,
               last_end: IntArray) -> list[IntArray]:
        """Columns (user0, pos, rating, ts) of ``n`` events in sessions that start in the block."""
        if n == 0:
            return _empty_columns()
        model, n_items = self.model, self.spec.items

        # Session lengths, the last one cut so the block has exactly n events.
        draw = int(n / MEAN_SESSION * 1.2) + 16
        lengths = np.searchsorted(SESSION_CDF, rng.random(draw) * SESSION_CDF[-1], side="right") + 1
        while lengths.sum() < n:
            more = np.searchsorted(SESSION_CDF, rng.random(draw) * SESSION_CDF[-1], side="right") + 1
            lengths = np.concatenate([lengths, more])
        total = np.cumsum(lengths)
        k = int(np.searchsorted(total, n)) + 1
        lengths = lengths[:k].copy()
        lengths[-1] -= total[k - 1] - n

        hour_cum = np.cumsum(hour_w)
        hour = np.searchsorted(hour_cum, rng.random(k) * hour_cum[-1], side="right")
        start = START_TS + (h0 + hour) * HOUR + rng.integers(0, HOUR, k)
        user = np.minimum(np.searchsorted(model.activity_cum, rng.random(k) * model.activity_cum[-1], side="right"),
                          self.spec.users - 1)

        first = np.cumsum(lengths) - lengths
        sess = np.repeat(np.arange(k), lengths)
        gap = np.clip(np.rint(GAP_MEDIAN_S * np.exp(GAP_SIGMA * rng.standard_normal(n))), GAP_MIN_S, GAP_MAX_S)
        gap = gap.astype(np.int64)
        gap[first] = 0
        elapsed = np.cumsum(gap)
        within = elapsed - elapsed[first][sess]
        duration = within[first + lengths - 1]
        rest = REST_S + rng.exponential(REST_EXTRA_S, k).astype(np.int64)
        start = _keep_sessions_apart(user, start, duration, rest, last_end)

        home = model.user_cluster(user + 1, start)
        session_cluster = np.where(rng.random(k) < OWN_CLUSTER, home, rng.integers(0, model.clusters, k))
        ts = start[sess] + within
        u = user[sess]

        pick = rng.random(n)
        is_first = np.zeros(n, dtype=bool)
        is_first[first] = True
        walk = ~is_first & (pick >= GLOBAL_SHARE) & (pick < GLOBAL_SHARE + WALK_SHARE)
        glob = pick < GLOBAL_SHARE
        pos = np.zeros(n, dtype=np.int64)
        # Fresh picks in proportion to appeal: the whole ring for global popularity, else the
        # session cluster's window at that time.
        width = max(1, round(model.width))
        lo = np.floor(model.center(session_cluster[sess], ts) - width / 2).astype(np.int64) % n_items
        lo = np.where(glob, 0, lo)
        hi = np.where(glob, n_items, lo + width)
        fresh = ~walk
        a_lo, a_hi = model.appeal_cum[lo[fresh]], model.appeal_cum[hi[fresh]]
        target = a_lo + rng.random(int(fresh.sum())) * (a_hi - a_lo)
        pos[fresh] = (np.searchsorted(model.appeal_cum, target, side="right") - 1) % n_items
        self._walk(rng, pos, walk)

        own = model.in_window(pos, model.user_cluster(u + 1, ts), ts)
        score = (RATING_BASE + model.bias[u] + RATING_OWN * own + RATING_HIT * model.hit[pos]
                 + RATING_NOISE_SD * rng.standard_normal(n))
        rating = np.clip(np.rint(score), 1, 5).astype(np.int64)
        return [u, pos, rating, ts]

    def _walk(self, rng: np.random.Generator, pos: IntArray, walk: npt.NDArray[np.bool_]) -> None:
        """Fills ``pos`` at walk events: a ring neighbour of the previous event, by appeal.

        A walk event's position depends on the one before, so runs are filled one step depth at
        a time (all first steps together, then all second steps, ...)."""
        if not walk.any():
            return
        n_items = self.spec.items
        index = np.arange(len(pos))
        anchor = np.maximum.accumulate(np.where(walk, 0, index))
        depth = (index - anchor)[walk]
        steps = np.concatenate([np.arange(-WALK_REACH, 0), np.arange(1, WALK_REACH + 1)])
        where = index[walk][np.argsort(depth, kind="stable")]
        bounds = np.searchsorted(np.sort(depth), np.arange(1, depth.max() + 2))
        for d in range(len(bounds) - 1):
            at = where[bounds[d]:bounds[d + 1]]
            cand = (pos[at - 1][:, None] + steps[None, :]) % n_items
            cum = np.cumsum(self.model.appeal[cand], axis=1)
            choice = (cum < rng.random(len(at))[:, None] * cum[:, -1:]).sum(axis=1)
            pos[at] = cand[np.arange(len(at)), np.minimum(choice, len(steps) - 1)]


def _keep_sessions_apart(user: IntArray, start: IntArray, duration: IntArray, rest: IntArray,
                         last_end: IntArray) -> IntArray:
    """Pushes a user's sessions later where needed so that each starts at least ``rest`` (its own
    pause) after the user's previous session ended, in this block or an earlier one; updates
    ``last_end``.

    Per user in start order ``s'[j] = max(s[j], s'[j-1] + d[j-1] + rest[j])``; with ``P`` the
    running sum of ``d[j-1] + rest[j]`` within the user, ``s' - P`` is a running maximum of
    ``s - P``, which numpy computes for all users at once (each user's values lifted above the
    previous user's).

    >>> ends = np.full(2, -10**9, dtype=np.int64)
    >>> apart = _keep_sessions_apart(np.array([0, 0, 1]), np.array([0, 100, 50]), np.array([60, 60, 0]),
    ...                              np.array([2400, 2500, 2400]), ends)
    >>> apart.tolist(), ends.tolist()
    ([0, 2560, 50], [2620, 50])
    """
    order = np.lexsort((start, user))
    u, s, d, pause = user[order], start[order], duration[order], rest[order]
    new_user = np.concatenate([[True], u[1:] != u[:-1]])
    heads = np.flatnonzero(new_user)
    s = s.copy()
    s[heads] = np.maximum(s[heads], last_end[u[heads]] + pause[heads])
    group = np.cumsum(new_user) - 1
    step = np.zeros_like(s)
    step[1:] = d[:-1] + pause[1:]
    step[heads] = 0
    before = np.cumsum(step)
    before = before - before[heads][group]
    v = s - before
    lift = group * (int(v.max()) - int(v.min()) + 1)
    pushed = np.maximum.accumulate(v - v.min() + lift) - lift + v.min() + before
    tails = np.concatenate([heads[1:] - 1, [len(u) - 1]])
    last_end[u[tails]] = pushed[tails] + d[tails]
    out = np.empty_like(start)
    out[order] = pushed
    return out


def _empty_columns() -> list[IntArray]:
    return [np.empty(0, dtype=np.int64) for _ in range(4)]


def _emit(cols: list[IntArray], last_ts: int, ring_item: IntArray) -> tuple[EventChunk, int]:
    """Sorted internal columns -> an output chunk with strictly increasing ts after ``last_ts``:
    ``t'[i] = max(t[i], t'[i-1] + 1)``, i.e. ``t' - i`` is a running maximum of ``t - i``.

    >>> cols = [np.array([0, 1, 0]), np.array([2, 0, 1]), np.array([3, 4, 5]), np.array([10, 10, 11])]
    >>> chunk, last = _emit(cols, 9, np.array([7, 8, 9]))
    >>> chunk.item.tolist(), chunk.ts.tolist(), last
    ([10, 8, 9], [10, 11, 12], 12)
    """
    user0, pos, rating, ts = cols
    i = np.arange(len(ts))
    strict = np.maximum.accumulate(np.maximum(ts - i, last_ts + 1)) + i
    return EventChunk(user0 + 1, ring_item[pos] + 1, rating, strict), int(strict[-1])


def iter_events(spec: SampleSpec) -> Iterator[EventChunk]:
    """The log as chunks in ts order; memory stays flat however many events are asked for.

    >>> spec = SampleSpec(events=3_000, users=100, items=200, seed=5)
    >>> sum(len(c) for c in iter_events(spec))
    3000
    """
    return LogSimulator(spec).chunks()


def generate(events: int, users: int, items: int, seed: int,
             clusters: int | None = None) -> list[tuple[int, int, int, int]]:
    """The whole log as ``(user, item, rating, ts)`` rows, for small logs (tests, benchmarks).

    >>> rows = generate(1_000, users=50, items=80, seed=7)
    >>> len(rows), rows == generate(1_000, users=50, items=80, seed=7), rows[0]
    (1000, True, (13, 1, 3, 880000406))
    >>> all(a[3] < b[3] for a, b in zip(rows, rows[1:]))
    True
    """
    spec = SampleSpec(events=events, users=users, items=items, seed=seed, clusters=clusters)
    return [row for chunk in iter_events(spec) for row in chunk.rows()]


def write_udata(spec: SampleSpec, out: IO[str], progress: IO[str] | None = None, every_s: float = 5.0) -> int:
    """Writes the log to ``out`` chunk by chunk; a progress line goes to ``progress`` at most
    every ``every_s`` seconds of wall time. Returns the number of events written.

    >>> import io
    >>> buf = io.StringIO()
    >>> write_udata(SampleSpec(events=10, users=3, items=5), buf), len(buf.getvalue().splitlines())
    (10, 10)
    """
    written = 0
    for chunk in _reporting(spec, progress, every_s):
        out.write(chunk.udata())
        written += len(chunk)
    return written


def _reporting(spec: SampleSpec, progress: IO[str] | None, every_s: float) -> Iterator[EventChunk]:
    """``iter_events``, with a progress line to ``progress`` at most every ``every_s`` seconds."""
    made, shown = 0, time.monotonic()
    for chunk in iter_events(spec):
        yield chunk
        made += len(chunk)
        if progress is not None and time.monotonic() - shown >= every_s:
            shown = time.monotonic()
            print(f"sample: {made:,}/{spec.events:,} events ({100 * made / max(spec.events, 1):.0f} %)",
                  file=progress, flush=True)


def write_parquet(spec: SampleSpec, out: Path, progress: IO[str] | None = None, every_s: float = 5.0) -> int:
    """``write_udata`` as Parquet rows (jobs/parquet_io.EVENTS)."""
    from jobs.parquet_io import EVENTS, ParquetSink  # pyarrow only for this format

    with ParquetSink(out, EVENTS) as sink:
        for chunk in _reporting(spec, progress, every_s):
            users, items, ts = chunk.user.astype(str), chunk.item.astype(str), chunk.ts.tolist()
            sink.add_columns({"event_id": [f"ml-{u}-{i}-{t}" for u, i, t in zip(users, items, ts, strict=True)],
                              "user_id": users, "item_id": items, "event_type": ["rating"] * len(chunk),
                              "value": chunk.rating.astype(np.float64), "ts": chunk.ts * 1000})
    return int(sink.written)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clusters", type=int, default=None, help="taste clusters (default: scaled with --items)")
    parser.add_argument("--days", type=float, default=None, help="time span of the log (default: scaled with --events)")
    parser.add_argument("--format", choices=["udata", "parquet"], default=None,
                        help="default: parquet for an OUT ending in .parquet, else udata")
    args = parser.parse_args(argv)
    try:
        spec = SampleSpec(events=args.events, users=args.users, items=args.items, seed=args.seed,
                          clusters=args.clusters, days=args.days)
    except ValueError as e:
        parser.error(str(e))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if (args.format or ("parquet" if args.out.suffix == ".parquet" else "udata")) == "parquet":
        n = write_parquet(spec, args.out, progress=sys.stderr)
    else:
        with args.out.open("w", encoding="ascii", newline="\n") as f:
            n = write_udata(spec, f, progress=sys.stderr)
    print(f"wrote {n} events to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
