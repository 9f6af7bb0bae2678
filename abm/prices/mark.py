"""Mark prices: the price margin, liquidations, triggers and unrealised PnL are measured at.

Why not the last trade or the mid: one aggressive order (or an empty book side in a cascade) moves those
at will, and the mark decides who gets liquidated. Venues therefore take a *median* of several
estimates, each anchored differently, so moving the mark needs moving two of them at once:

- an oracle-anchored estimate smoothed over minutes (hard to push: the oracle comes from other venues
  and the smoothing needs sustained pressure);
- a book estimate (bid, ask, last trade: what one could actually trade at now);
- for Hyperliquid, optionally the price of the same perp on external venues; for Binance, the index
  carried forward by the funding still to be paid (the fair basis of a perp just before funding).

Both classes are incremental (``MarkModel`` is what the feed needs of one; ``MARK_MODELS`` names them):
call ``update`` on every event that changes an input (book, trade, oracle, funding), with non-decreasing
``t_us``; it returns the mark in integer ticks (rounded half to even, at least 1) and keeps it in ``value``. A
rejected update raises and changes nothing.

Medians with missing pieces: the median of three values is the middle one; of two, their mean (the
median of an even count); of one, itself. Book inputs may be missing (empty side, no trade yet): see
``book_median``.

Time-weighting convention (both the EMA and the moving average): the inputs given at one update hold
until the next update, so the elapsed interval ``t`` is credited to the *previous* update's sample. With
updates on every change this is the exact time integral of the observed signal; the newest sample has
no weight until time passes, which is what makes a one-event spike unable to move the smoothed piece.
(Hyperliquid samples on a fixed clock and credits the new sample; the two differ by one sampling step.)
"""

from __future__ import annotations

import math
from collections import deque
from fractions import Fraction
from typing import Any, ClassVar, Optional, Union

from abm.errors import InvalidInput, InvalidMarketSpec, InvalidPrice
from abm.prices.funding import SECOND_US, as_fraction, as_price
from abm.registry import Registry, subclass_of

PriceLike = Union[int, Fraction]


def median_of(values: list[Fraction]) -> Fraction:
    """Middle of 3 values, mean of 2, the value itself for 1 (exact)."""
    n = len(values)
    if n == 1:
        return values[0]
    if n == 2:
        return (values[0] + values[1]) / 2
    if n == 3:
        a, b, c = sorted(values)
        return b
    raise ValueError(f"median_of takes 1 to 3 values, got {n}")  # internal misuse only


def book_median(bid: Optional[Fraction], ask: Optional[Fraction], last: Optional[Fraction]) -> Optional[Fraction]:
    """median(best bid, best ask, last trade) with missing inputs; ``None`` when there is nothing at all.

    With both sides present the median of three is the last trade clamped into [bid, ask]. A missing side
    is read as an unbounded one (bid −∞, ask +∞), so with only an ask the result is min(ask, last): an
    empty bid side must not let a stale high last trade hold the mark up in a crash. Without a last trade
    the median of the quotes that exist is used (the mid, or the one side). No quotes: the last trade.
    """
    if last is None:
        quotes = [q for q in (bid, ask) if q is not None]
        return median_of(quotes) if quotes else None
    v = last
    if bid is not None and v < bid:
        v = bid
    if ask is not None and v > ask:
        v = ask
    return v


def _round_ticks(x: Fraction) -> int:
    r = round(x)  # Fraction rounds half to even
    return r if r >= 1 else 1


Ratio = tuple[int, int]  # an exact number as (numerator, denominator > 0), not necessarily in lowest terms


def _lt(x: Ratio, y: Ratio) -> bool:
    return x[0] * y[1] < y[0] * x[1]


def median_ratio(values: list[Ratio]) -> Ratio:
    """``median_of`` on integer ratios: the same exact value without building Fractions."""
    n = len(values)
    if n == 1:
        return values[0]
    if n == 2:
        (a, b), (c, d) = values
        return a * d + c * b, 2 * b * d
    x, y, z = values
    if _lt(y, x):
        x, y = y, x
    if _lt(z, y):  # y is the larger of the first two; the middle is then max(x, z)
        y = z if _lt(x, z) else x
    return y


def round_ratio(x: Ratio) -> int:
    """``_round_ticks`` of an integer ratio: half to even (as ``round(Fraction)``), at least 1."""
    q, r = divmod(x[0], x[1])
    twice = 2 * r
    if twice > x[1] or (twice == x[1] and q & 1):
        q += 1
    return q if q >= 1 else 1


def _float_ratio(x: float) -> Ratio:
    """A float's exact value (``Fraction(x)``) as an integer ratio."""
    return x.as_integer_ratio()


def _plain_tick(v: Any) -> bool:
    """A price the integer path takes as it is: a positive built-in int (anything else goes through checks)."""
    return type(v) is int and v > 0


def _ext_ratio(v: Any) -> Union[None, bool, Ratio]:
    """The external perp piece for the integer path: None (no piece), its ratio (a positive int or Fraction),
    or False (anything else: the checked path refuses it by name)."""
    if v is None:
        return None
    if _plain_tick(v):
        return (v, 1)
    if type(v) is Fraction and v > 0:
        return (v.numerator, v.denominator)
    return False


def _t(value: Any, last: Optional[int]) -> int:
    if isinstance(value, bool) or isinstance(value, float) or not hasattr(value, "__index__"):
        raise InvalidInput("t_us", value, "must be an integer number of microseconds")
    t = int(value.__index__())
    if t < 0:
        raise InvalidInput("t_us", value, "must be >= 0")
    if last is not None and t < last:
        raise InvalidInput("t_us", value, f"must be >= the previous update's time {last} us (time does not run back)")
    return t


def _quotes(best_bid: Any, best_ask: Any, last_trade: Any) -> tuple[Optional[Fraction], Optional[Fraction], Optional[Fraction]]:
    bid = as_price("best_bid", best_bid, optional=True)
    ask = as_price("best_ask", best_ask, optional=True)
    last = as_price("last_trade", last_trade, optional=True)
    if bid is not None and ask is not None and bid > ask:
        raise InvalidPrice("best_bid", best_bid, f"must not exceed best_ask ({best_ask}): a book cannot be crossed")
    return bid, ask, last


def _seconds(field: str, value: Any) -> Fraction:
    s = as_fraction(field, value, InvalidMarketSpec)
    if s <= 0:
        raise InvalidMarketSpec(field, value, "must be > 0 seconds")
    return s


class MarkModel:
    """A mark formula as the feed drives it: one call per mark update with every input a venue might use.

    The feed hands all inputs to every model (a formula ignores what it does not need), so adding a
    formula needs no change to the feed. ``from_profile`` builds a fresh model (they keep state) from
    a venue profile (``abm.venues.schema.VenueProfile``; its ``mark`` table holds the formula's keys).
    """

    __slots__ = ()

    value: Optional[int]
    # whether the formula has an external-perp input (the feed refuses external perps for one without)
    takes_external_perp: ClassVar[bool] = False

    @classmethod
    def from_profile(cls, profile: Any) -> "MarkModel":
        return cls()

    def on_feed(self, t_us: int, oracle: PriceLike, best_bid: Optional[int], best_ask: Optional[int],
                last_trade: Optional[int], last_funding_rate: Fraction, time_to_funding_us: int,
                funding_interval_us: int, external_perp: Optional[PriceLike] = None) -> int:
        """Advance to ``t_us`` and return the mark in ticks (the inputs are the feed's, in ticks).

        ``external_perp``: the median of the market's external perp prices (``abm.prices.ExternalPerps``),
        given only when the market has some, and only to a model with ``takes_external_perp``."""
        raise NotImplementedError


MARK_MODELS: Registry[type[MarkModel]] = Registry("mark model", "mark.formula", "a subclass of abm.prices.MarkModel",
                                                  subclass_of(MarkModel))


@MARK_MODELS.register("hyperliquid")
class HyperliquidMark(MarkModel):
    """Hyperliquid's mark: median of (oracle + EMA(mid − oracle), median(bid, ask, last), external perp).

    - ``oracle + EMA``: the oracle is hard to move from inside the venue; the EMA (``ema_window_s``, 150 s)
      adds the persistent part of the book's premium, so the mark tracks a perp that trades rich or cheap
      without following a momentary spike. Update over ``t`` seconds:
      ``num ← num·e^(−t/τ) + x·t``, ``den ← den·e^(−t/τ) + t``, ``EMA = num/den`` (floats), with ``x`` the
      last ``mid − oracle`` (held; see the module doc). With no mid (a side empty) nothing is added for the
      time without one: both sums decay, so the EMA's value is unchanged and the next real sample counts
      relatively more. Before any time has been credited the EMA is the latest ``mid − oracle``, and 0 if
      there never was a mid.
    - ``median(bid, ask, last)``: what trades now, robust to any one of the three (``book_median``);
      omitted when the book is empty and nothing has traded.
    - ``external_perp``: the same contract elsewhere, when given: the weighted median of the market's
      external perps (``abm.prices.external_perp``; a scenario's ``markets[i].external_perps``), which
      follow the world's price without the oracle's delay. Without it (only two inputs) the third
      piece is a ``book_ema_window_s`` (30 s) EMA of the book piece, the rule reported for Hyperliquid
      (shared/reference/venue-mechanics.md; unconfirmed in its docs, reported by forks). Why it matters:
      the mean of two pieces holds the mark halfway between a book that has crashed and an oracle that
      has not, for as long as the oracle lags; the median with the book's own EMA follows the book within
      tens of seconds. ``book_ema_window_s=None`` (the default for now) takes the mean of the two: the
      catalogue's stress stories still come from a scripted index that the book does not follow, and
      under the median rule they would show no cascade at all; the default moves with them to order flow.

    The mark is the median of the pieces present (two: their mean), rounded half to even to integer ticks
    and at least 1 tick. Both EMAs use the same update and time-weighting convention.
    """

    __slots__ = ("tau_s", "book_tau_s", "_t", "_num", "_den", "_held", "_bnum", "_bden", "_bheld", "value",
                 "_ratios")

    takes_external_perp = True

    def __init__(self, ema_window_s: Union[int, float, Fraction] = 150,
                 book_ema_window_s: Optional[Union[int, float, Fraction]] = None) -> None:
        self.tau_s = float(_seconds("ema_window_s", ema_window_s))
        self.book_tau_s = None if book_ema_window_s is None else float(_seconds("book_ema_window_s", book_ema_window_s))
        self._t: Optional[int] = None
        self._num = 0.0
        self._den = 0.0
        self._held: Optional[float] = None  # mid − oracle from the last update, ticks
        self._bnum = 0.0
        self._bden = 0.0
        self._bheld: Optional[float] = None  # the book piece of the last update, ticks
        self.value: Optional[int] = None  # the mark in ticks after the last update
        self._ratios: tuple[Optional[Ratio], ...] = ()  # the last update's pieces (``components``) as integer ratios

    @classmethod
    def from_profile(cls, profile: Any) -> "HyperliquidMark":
        mark = profile.mark
        return cls(ema_window_s=mark.ema_window_s,
                   book_ema_window_s=mark.book_ema_window_s if mark.two_inputs == "book_ema" else None)

    def on_feed(self, t_us: int, oracle: PriceLike, best_bid: Optional[int], best_ask: Optional[int],
                last_trade: Optional[int], last_funding_rate: Fraction, time_to_funding_us: int,
                funding_interval_us: int, external_perp: Optional[PriceLike] = None) -> int:
        return self.update(t_us, oracle, best_bid, best_ask, last_trade, external_perp)

    @property
    def ema(self) -> Optional[float]:
        """Current EMA of (mid − oracle) in ticks; ``None`` before any mid was seen."""
        if self._den > 0:
            return self._num / self._den
        return self._held

    def update(
        self,
        t_us: int,
        oracle: PriceLike,
        best_bid: Optional[int],
        best_ask: Optional[int],
        last_trade: Optional[int],
        external_perp: Optional[PriceLike] = None,
    ) -> int:
        """Advance to ``t_us`` with the current inputs (ticks; ``None`` = missing) and return the mark.

        ``external_perp``: the external perps' median (ticks, an int or an exact Fraction), or None for none."""
        ext_r = _ext_ratio(external_perp)
        if (ext_r is not False and _plain_tick(oracle) and (best_bid is None or _plain_tick(best_bid))
                and (best_ask is None or _plain_tick(best_ask)) and (last_trade is None or _plain_tick(last_trade))
                and (best_bid is None or best_ask is None or best_bid <= best_ask)):
            return self._update_ticks(_t(t_us, self._t), oracle, best_bid, best_ask, last_trade,  # type: ignore[arg-type]
                                      ext_r)  # type: ignore[arg-type]
        t = _t(t_us, self._t)
        o = as_price("oracle", oracle)
        bid, ask, last = _quotes(best_bid, best_ask, last_trade)
        ext = as_price("external_perp", external_perp, optional=True)
        # --- all inputs valid; now change state
        self._advance(t)
        self._held = float((bid + ask) / 2 - o) if bid is not None and ask is not None else None
        ema = self.ema
        oracle_piece = o + Fraction(ema) if ema is not None else o
        book_piece = book_median(bid, ask, last)
        self._bheld = float(book_piece) if book_piece is not None else None
        third = ext
        if third is None and self.book_tau_s is not None:  # two inputs: the book's own EMA is the third
            third = Fraction(self._bnum / self._bden) if self._bden > 0 else book_piece
        self._ratios = tuple(None if p is None else (p.numerator, p.denominator) for p in (oracle_piece, book_piece, third))
        mark = _round_ticks(median_of([p for p in (oracle_piece, book_piece, third) if p is not None]))
        self.value = mark
        return mark

    @property
    def components(self) -> tuple[Optional[Fraction], ...]:
        """(oracle + EMA, book median, external perp or the book's EMA) of the last update, exact."""
        return tuple(None if r is None else Fraction(*r) for r in self._ratios)

    def _advance(self, t: int) -> None:
        """Decay both EMAs to ``t`` and credit the held samples with the elapsed time (floats)."""
        if self._t is not None and t > self._t:
            dt = (t - self._t) / SECOND_US
            decay = math.exp(-dt / self.tau_s)
            self._num *= decay
            self._den *= decay
            if self._held is not None:
                self._num += self._held * dt
                self._den += dt
            if self.book_tau_s is not None:
                bdecay = math.exp(-dt / self.book_tau_s)
                self._bnum *= bdecay
                self._bden *= bdecay
                if self._bheld is not None:
                    self._bnum += self._bheld * dt
                    self._bden += dt
        self._t = t

    def _update_ticks(self, t: int, o: int, bid: Optional[int], ask: Optional[int], last: Optional[int],
                      ext: Optional[Ratio] = None) -> int:
        """``update`` for integer ticks (what the feed passes), in integer ratios: the same value, no Fractions.

        Each float that the Fraction path derives is a correctly rounded quotient of the same exact
        value (int / int), and Fraction(float) is the float's exact ratio, so every piece, the median and
        its rounding are the same numbers.
        """
        self._advance(t)
        self._held = (bid + ask - 2 * o) / 2 if bid is not None and ask is not None else None
        ema = self.ema
        if ema is not None:
            en, ed = _float_ratio(ema)
            oracle_piece: Ratio = (o * ed + en, ed)
        else:
            oracle_piece = (o, 1)
        book_piece: Optional[Ratio]
        if last is None:
            if bid is not None and ask is not None:
                book_piece = (bid + ask, 2)
            elif bid is not None or ask is not None:
                book_piece = (bid if bid is not None else ask, 1)  # type: ignore[assignment]
            else:
                book_piece = None
        else:
            v = last
            if bid is not None and v < bid:
                v = bid
            if ask is not None and v > ask:
                v = ask
            book_piece = (v, 1)
        self._bheld = book_piece[0] / book_piece[1] if book_piece is not None else None
        third: Optional[Ratio] = ext
        if third is None and self.book_tau_s is not None:  # two inputs: the book's own EMA is the third
            third = _float_ratio(self._bnum / self._bden) if self._bden > 0 else book_piece
        pieces = [oracle_piece] if book_piece is None else [oracle_piece, book_piece]
        if third is not None:
            pieces.append(third)
        self._ratios = (oracle_piece, book_piece, third)
        mark = round_ratio(median_ratio(pieces))
        self.value = mark
        return mark


@MARK_MODELS.register("binance")
class BinanceMark(MarkModel):
    """Binance's mark: median(index·(1 + r·Δ/interval), index + MA₃₀(mid − index), last trade).

    - ``index × (1 + last funding × time to funding / interval)``: a perp about to pay funding ``r`` is
      fairly priced that much away from the index, decaying linearly to the index at the payment.
    - ``index + MA(mid − index)``: the book's basis averaged over ``ma_window_s`` (30 s), time-weighted
      (each mid holds until the next update). Only time with a mid counts: if the window is partly without
      one (a side empty), the average is over the covered part; if none of it is covered, the latest
      basis is used, and 0 if there is none.
    - ``last trade``: omitted before the first trade, leaving the mean of the other two.

    Exact (Fractions) throughout; the result is rounded half to even to integer ticks, at least 1.
    ``funding_interval_us`` in ``update`` overrides the configured interval for schedules whose interval
    changes (Binance's switch to 1 h after a capped settlement).
    """

    __slots__ = ("window_us", "interval_us", "_t", "_held", "_segs", "_sx", "_sd", "value", "components")

    def __init__(self, ma_window_s: Union[int, float, Fraction] = 30, funding_interval_s: Union[int, float, Fraction] = 28800) -> None:
        w = _seconds("ma_window_s", ma_window_s) * SECOND_US
        if w.denominator != 1:
            raise InvalidMarketSpec("ma_window_s", ma_window_s, "must be a whole number of microseconds")
        iv = _seconds("funding_interval_s", funding_interval_s) * SECOND_US
        if iv.denominator != 1:
            raise InvalidMarketSpec("funding_interval_s", funding_interval_s, "must be a whole number of microseconds")
        self.window_us = int(w)
        self.interval_us = int(iv)
        self._t: Optional[int] = None
        self._held: Optional[Fraction] = None  # mid − index from the last update
        self._segs: deque[tuple[int, int, Fraction]] = deque()  # (start, end, basis) held over [start, end)
        self._sx = Fraction(0)  # Σ basis·duration over _segs
        self._sd = 0  # Σ duration over _segs
        self.value: Optional[int] = None
        self.components: tuple[Optional[Fraction], ...] = ()  # (funding basis, MA basis, last) of the last update

    @classmethod
    def from_profile(cls, profile: Any) -> "BinanceMark":
        return cls(ma_window_s=profile.mark.ma_window_s, funding_interval_s=profile.funding.payment_interval_s)

    def on_feed(self, t_us: int, oracle: PriceLike, best_bid: Optional[int], best_ask: Optional[int],
                last_trade: Optional[int], last_funding_rate: Fraction, time_to_funding_us: int,
                funding_interval_us: int, external_perp: Optional[PriceLike] = None) -> int:
        if external_perp is not None:
            raise InvalidInput("external_perp", external_perp, "must be None: Binance's mark has no external-perp "
                                                               "input (only the hyperliquid formula takes one)")
        return self.update(t_us, oracle, best_bid, best_ask, last_trade, last_funding_rate, time_to_funding_us,
                           funding_interval_us)

    def basis_ma(self) -> Optional[Fraction]:
        """Time-weighted mean of (mid − index) over the window ending at the last update."""
        if self._t is None:
            return None
        lo = self._t - self.window_us
        sx, sd = self._sx, self._sd
        if self._segs:
            s, e, x = self._segs[0]
            if s < lo:  # the oldest segment sticks out of the window
                sx -= x * (lo - s)
                sd -= lo - s
        if sd > 0:
            return sx / sd
        return self._held

    def update(
        self,
        t_us: int,
        index: PriceLike,
        best_bid: Optional[int],
        best_ask: Optional[int],
        last_trade: Optional[int],
        last_funding_rate: Union[int, Fraction],
        time_to_funding_us: int,
        funding_interval_us: Optional[int] = None,
    ) -> int:
        """Advance to ``t_us`` with the current inputs (ticks; ``None`` = missing) and return the mark."""
        t = _t(t_us, self._t)
        idx = as_price("index", index)
        bid, ask, last = _quotes(best_bid, best_ask, last_trade)
        r = as_fraction("last_funding_rate", last_funding_rate)
        iv = self.interval_us
        if funding_interval_us is not None:
            if isinstance(funding_interval_us, bool) or not isinstance(funding_interval_us, int) or funding_interval_us <= 0:
                raise InvalidInput("funding_interval_us", funding_interval_us, "must be None or a positive integer number of microseconds")
            iv = funding_interval_us
        if isinstance(time_to_funding_us, bool) or not hasattr(time_to_funding_us, "__index__") or isinstance(time_to_funding_us, float):
            raise InvalidInput("time_to_funding_us", time_to_funding_us, "must be an integer number of microseconds")
        ttf = int(time_to_funding_us.__index__())
        if not 0 <= ttf <= iv:
            raise InvalidInput("time_to_funding_us", time_to_funding_us, f"must be in [0, {iv}] us (the funding interval)")
        # --- all inputs valid; now change state
        if self._t is not None and t > self._t and self._held is not None:
            self._segs.append((self._t, t, self._held))
            self._sx += self._held * (t - self._t)
            self._sd += t - self._t
        lo = t - self.window_us
        segs = self._segs
        while segs and segs[0][1] <= lo:
            s, e, x = segs.popleft()
            self._sx -= x * (e - s)
            self._sd -= e - s
        self._t = t
        self._held = (bid + ask) / 2 - idx if bid is not None and ask is not None else None
        p1 = idx * (1 + r * Fraction(ttf, iv))
        ma = self.basis_ma()
        p2 = idx + ma if ma is not None else idx
        self.components = (p1, p2, last)
        mark = _round_ticks(median_of([p for p in self.components if p is not None]))
        self.value = mark
        return mark
