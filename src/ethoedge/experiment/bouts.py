"""From classified windows to what people read: bouts and daily time budgets, built as the
windows stream (memory does not grow with the recording).

Time attribution: a window stands for ``step_s = min(hop, length) / rate`` seconds from its
start (its timestamp; the new time it covers), so the windows of a gap-free run tile it and
a run's last ``length - hop`` samples are not counted. A *bout* is a stretch of consecutive
windows of one animal, segment and gap-free run with the same behaviour: it starts at its
first window's start and ends ``step_s`` after its last window's start; a gap always ends a
bout. Budgets split every bout at local midnight (time zone ``tz``), so each animal-day's
hours add up to its recorded (classified) time, and ``fraction`` is the share of it.

Optional cleaning, off by default, applied in this order within each run:

- ``smooth=K`` (odd): each window takes the most frequent label among the ``K`` windows
  centred on it (a median filter for categories; fewer at the ends of a run; a tie keeps the
  window's own label if it is among the most frequent, else the first by name);
- ``min_bout_s=S``: a bout shorter than ``S`` seconds joins the bout before it in the run (the
  first bout of a run joins the one after it), and neighbours with the same behaviour merge.

``windows.csv`` keeps the raw per-window predictions; bouts and budgets use the cleaned labels.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

BOUT_COLUMNS = ("animal", "start", "end", "behaviour", "duration_s", "local_start")
BUDGET_COLUMNS = ("animal", "date", "behaviour", "hours", "fraction")


@dataclass
class Bout:
    """One bout: ``[start, end)`` in POSIX seconds."""

    animal: str
    segment: str
    start: float
    end: float
    behaviour: str


@dataclass
class _State:
    run: int = -1
    # smoother: labels/starts of the run not yet passed on, and how many of them are context
    lab: list[str] = field(default_factory=list)
    st: list[float] = field(default_factory=list)
    n_ctx: int = 0
    # merger: the open bout
    open: Bout | None = None
    # min-bout filter: the pending bout and a short first bout of the run
    prev: Bout | None = None
    head: Bout | None = None


class BoutBuilder:
    """Bouts from windows pushed in time order per (animal, segment) (module docstring).

    Args:
        step_s: seconds each window stands for (``min(hop, length) / rate``).
        smooth: odd number of windows of the majority filter (1: none).
        min_bout_s: shortest bout kept on its own (0: none).
    """

    def __init__(self, step_s: float, smooth: int = 1, min_bout_s: float = 0.0) -> None:
        if smooth < 1 or smooth % 2 == 0:
            from ethoedge.errors import ConfigError

            raise ConfigError(f"smooth must be an odd number of windows >= 1, got {smooth}")
        self.step_s, self.smooth, self.min_bout_s = float(step_s), int(smooth), float(min_bout_s)
        self._state: dict[tuple[str, str], _State] = {}

    def push(
        self, animal: str, segment: str, run: int, start: np.ndarray, labels: np.ndarray
    ) -> list[Bout]:
        """Windows of one run (in time order); returns the bouts they complete."""
        s = self._state.setdefault((animal, segment), _State())
        out: list[Bout] = []
        if run != s.run:
            out += self._end_run(animal, segment, s)
            s.run = run
        if self.smooth == 1:  # no context to keep: whole runs of one label at a time
            self._spans(animal, segment, s, np.asarray(start, float), labels, out)
            return out
        s.lab += [str(v) for v in labels]
        s.st += [float(v) for v in start]
        self._smooth(animal, segment, s, final=False, out=out)
        return out

    def flush(self) -> list[Bout]:
        """Every bout still open (call once at the end)."""
        out: list[Bout] = []
        for (animal, segment), s in self._state.items():
            out += self._end_run(animal, segment, s)
        return out

    # ------------------------------------------------------------------ stages

    def _end_run(self, animal: str, segment: str, s: _State) -> list[Bout]:
        out: list[Bout] = []
        self._smooth(animal, segment, s, final=True, out=out)
        s.lab, s.st, s.n_ctx = [], [], 0
        if s.open is not None:
            self._bout(s, s.open, out)
            s.open = None
        if s.prev is not None:
            out.append(s.prev)
        elif s.head is not None:
            out.append(s.head)
        s.prev = s.head = None
        return out

    def _smooth(self, animal: str, segment: str, s: _State, *, final: bool, out: list) -> None:
        h = self.smooth // 2
        n = len(s.lab)
        last = n if final else n - h  # windows with their whole right context
        for i in range(s.n_ctx, last):
            if h == 0:
                lab = s.lab[i]
            else:
                near = Counter(s.lab[max(0, i - h) : i + h + 1])
                top = max(near.values())
                best = sorted(k for k, v in near.items() if v == top)
                lab = s.lab[i] if s.lab[i] in best else best[0]
            self._window(animal, segment, s, s.st[i], lab, out)
        done = max(last, s.n_ctx)
        keep_from = max(0, done - h)  # keep h windows of left context
        s.lab, s.st = s.lab[keep_from:], s.st[keep_from:]
        s.n_ctx = done - keep_from

    def _spans(
        self, animal: str, segment: str, s: _State, start: np.ndarray, labels: Any, out: list
    ) -> None:
        """Windows in time order, as :meth:`_window` one by one would take them: each stretch
        of one label extends the open bout or opens one (the same bouts, far faster)."""
        if not len(start):
            return
        lab = np.asarray(labels, dtype=object).astype(str)
        cuts = [0, *(np.flatnonzero(lab[1:] != lab[:-1]) + 1).tolist(), len(lab)]
        for a, b in itertools.pairwise(cuts):
            first = float(start[a])
            self._window(animal, segment, s, first, str(lab[a]), out)
            assert s.open is not None
            s.open.end = float(start[b - 1]) + self.step_s

    def _window(
        self, animal: str, segment: str, s: _State, start: float, lab: str, out: list
    ) -> None:
        end = start + self.step_s
        if s.open is not None and s.open.behaviour == lab:
            s.open.end = end
            return
        if s.open is not None:
            self._bout(s, s.open, out)
        s.open = Bout(animal, segment, start, end, lab)

    def _bout(self, s: _State, b: Bout, out: list) -> None:
        short = b.end - b.start < self.min_bout_s - 1e-9
        if s.prev is None:
            if s.head is not None:
                b.start, s.head = s.head.start, None
                short = b.end - b.start < self.min_bout_s - 1e-9
            if short:
                s.head = b
            else:
                s.prev = b
            return
        if short or b.behaviour == s.prev.behaviour:
            s.prev.end = b.end
            return
        out.append(s.prev)
        s.prev = b


def bouts_frame(bouts: list[Bout], tz: str = "UTC") -> pd.DataFrame:
    """Bouts as rows of :data:`BOUT_COLUMNS` (``local_start``: ISO 8601 in ``tz``)."""
    if not bouts:
        return pd.DataFrame({c: [] for c in BOUT_COLUMNS})
    start = np.array([b.start for b in bouts])
    end = np.array([b.end for b in bouts])
    return pd.DataFrame(
        {
            "animal": [b.animal for b in bouts],
            "start": start,
            "end": end,
            "behaviour": [b.behaviour for b in bouts],
            "duration_s": np.round(end - start, 6),
            "local_start": iso_local(start, tz),
        }
    )


def iso_local(t: np.ndarray, tz: str) -> np.ndarray:
    """POSIX seconds as local ISO 8601 times in ``tz``, whole seconds, with the UTC offset:
    ``YYYY-MM-DDTHH:MM:SS+HHMM`` (what ``strftime("%Y-%m-%dT%H:%M:%S%z")`` writes, built
    array-wise: the clock times by NumPy, each distinct offset formatted once).

    >>> iso_local(np.array([1719835200.5]), "Europe/Berlin").tolist()
    ['2024-07-01T14:00:00+0200']
    """
    utc = pd.to_datetime(np.asarray(t, dtype=np.float64), unit="s", utc=True)
    wall = utc.tz_convert(tz).tz_localize(None).to_numpy()  # local clock, naive
    offset = (wall - utc.tz_localize(None).to_numpy()) // np.timedelta64(1, "s")
    clock = np.datetime_as_string(wall.astype("datetime64[s]"), unit="s")
    uniq, inv = np.unique(offset.astype(np.int64), return_inverse=True)
    text = np.array([_utc_offset(int(v)) for v in uniq])
    return np.char.add(clock, text[inv.ravel()]).astype(object)


def _utc_offset(seconds: int) -> str:
    """``+HHMM`` (``+HHMMSS`` for the odd seconds of old local mean times), as ``%z``."""
    sign, a = ("-" if seconds < 0 else "+"), abs(seconds)
    return f"{sign}{a // 3600:02d}{a % 3600 // 60:02d}" + (f"{a % 60:02d}" if a % 60 else "")


def split_days(
    start: np.ndarray, end: np.ndarray, tz: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Intervals ``[start, end)`` (POSIX s) cut at local midnight in ``tz``.

    Returns ``(index, date, start, end)`` of the pieces: the interval each came from, its
    local date (``YYYY-MM-DD``) and its bounds.

    >>> i, d, s, e = split_days(np.array([82800.0]), np.array([90000.0]), "UTC")
    >>> i.tolist(), d.tolist(), s.tolist(), e.tolist()
    ([0, 0], ['1970-01-01', '1970-01-02'], [82800.0, 86400.0], [86400.0, 90000.0])
    """
    idx = np.arange(len(start))
    s, e = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    out_i, out_d, out_s, out_e = [], [], [], []
    while len(idx):
        local = pd.to_datetime(s, unit="s", utc=True).tz_convert(tz)
        day = local.tz_localize(None).normalize()
        nxt = (day + pd.Timedelta(days=1)).tz_localize(
            tz, ambiguous=True, nonexistent="shift_forward"
        )
        nxt_s = (nxt - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
        nxt_s = np.asarray(nxt_s, dtype=np.float64)
        cut = np.minimum(e, nxt_s)
        out_i.append(idx)
        out_d.append(np.asarray(day.strftime("%Y-%m-%d"), dtype=object))
        out_s.append(s)
        out_e.append(cut)
        more = e > nxt_s
        idx, s, e = idx[more], nxt_s[more], e[more]
    cat = np.concatenate
    return cat(out_i), cat(out_d), cat(out_s), cat(out_e)


class DailyBudget:
    """Seconds per (animal, local date, behaviour), summed bout by bout."""

    def __init__(self, tz: str = "UTC") -> None:
        self.tz = tz
        self.seconds: dict[tuple[str, str, str], float] = {}

    def add(self, bouts: list[Bout]) -> None:
        """Count ``bouts`` (split at local midnight)."""
        if not bouts:
            return
        start = np.array([b.start for b in bouts])
        end = np.array([b.end for b in bouts])
        i, d, s, e = split_days(start, end, self.tz)
        for k, date, dur in zip(i.tolist(), d.tolist(), (e - s).tolist(), strict=True):
            key = (bouts[k].animal, date, bouts[k].behaviour)
            self.seconds[key] = self.seconds.get(key, 0.0) + dur

    def merge(self, other: dict[tuple[str, str, str], float]) -> None:
        """Add another budget's seconds."""
        for k, v in other.items():
            self.seconds[k] = self.seconds.get(k, 0.0) + v

    def frame(self, behaviours: tuple[str, ...] = ()) -> pd.DataFrame:
        """Rows of :data:`BUDGET_COLUMNS` sorted by animal and date; every behaviour of
        ``behaviours`` (then any other) on every animal-day, zeros included."""
        if not self.seconds:
            return pd.DataFrame({c: [] for c in BUDGET_COLUMNS})
        s = pd.Series(self.seconds)
        s.index.names = ["animal", "date", "behaviour"]
        others = sorted(set(s.index.get_level_values("behaviour")) - set(behaviours))
        order = [*behaviours, *others]
        wide = s.unstack("behaviour", fill_value=0.0).reindex(columns=order, fill_value=0.0)
        wide = wide.sort_index()
        total = wide.sum(axis=1)
        long = wide.stack().rename("seconds").reset_index()
        long["hours"] = long["seconds"] / 3600.0
        tot = total.reindex(pd.MultiIndex.from_frame(long[["animal", "date"]])).to_numpy()
        long["fraction"] = np.where(tot > 0, long["seconds"] / np.where(tot > 0, tot, 1), 0.0)
        return long[list(BUDGET_COLUMNS)].reset_index(drop=True)

    def totals(self, behaviours: tuple[str, ...] = ()) -> pd.DataFrame:
        """Hours per behaviour (columns) per animal (rows), over all days."""
        f = self.frame(behaviours)
        if not len(f):
            return pd.DataFrame(columns=list(behaviours))
        t = f.pivot_table(index="animal", columns="behaviour", values="hours", aggfunc="sum")
        cols = [*behaviours, *sorted(set(t.columns) - set(behaviours))]
        t = t.reindex(columns=cols, fill_value=0.0)
        t.columns.name = None
        return t
