"""Inventory-aware market makers (Avellaneda & Stoikov 2008; Guéant, Lehalle & Fernandez-Tapia 2013).

Each market maker quotes a ladder of post-only GTC limit orders around a *reservation price* ``r`` with a
half-spread ``d``, from one of two published models (``quoting``):

- ``"as"`` (the default), Avellaneda & Stoikov (2008), "High-frequency trading in a limit order book",
  Quantitative Finance 8(3), eqs. (29)-(30):

      r = s − q·γ·σ²·(T − t),     δ_a + δ_b = 2d = γ·σ²·(T − t) + (2/γ)·ln(1 + γ/κ),

  where ``T − t`` is ``horizon``: ``"fixed"`` holds it at ``tau_s`` (a stationary maker, the default),
  ``"run"`` counts down to the run's end, ``"session"`` to the end of each session of ``session_s``, so the
  inventory skew and the risk part of the spread shrink to nothing and the spread to (2/γ)·ln(1 + γ/κ) as
  t → T.
- ``"glft"``, the asymptotic closed form of Guéant, Lehalle & Fernandez-Tapia (2013), "Dealing with the
  inventory risk: a solution to the market making problem", Mathematics and Financial Economics 7(4),
  477-507, section 4 (also Guéant 2017, "Optimal market making", Applied Mathematical Finance 24(2)):

      δ_b(q) = (1/γ)·ln(1 + γ/κ) + ((2q + 1)/2)·C,   δ_a(q) = (1/γ)·ln(1 + γ/κ) − ((2q − 1)/2)·C,
      C = sqrt( σ²γ/(2κA) · (1 + γ/κ)^(1 + κ/γ) ),

  with fills arriving at λ(δ) = A·e^(−κδ) per second at distance δ (``arrival_a`` is A); it has no horizon
  (its T → ∞ limit), so ``r = s − q·C`` and ``d = (1/γ)·ln(1 + γ/κ) + C/2``.

Units, converted once (``target``): ``s`` is the reference price (the book mid; the mark, then the oracle,
when the book is one-sided) in USDC per base unit, ``q`` the position in base units (the papers' trades of
unit size are one base unit here), ``γ`` per USDC, ``κ`` per USDC of distance from ``s``, ``A`` per second,
``T − t`` in seconds and ``σ`` the maker's volatility estimate in USDC per √second: the estimate is of log
returns (annualised in the parameters, per second inside), times ``s``. The quotes go back to ticks at the
end: the first bid is ``floor((r − d)/tick)`` and the first ask ``ceil((r + d)/tick)`` (rounded away from
``s``, never tighter than the model; a 1e-9-tick tolerance absorbs float noise at an exact tick), deeper
levels ``level_spacing_bps`` further each, all clamped so a post-only order does not cross the book it
sees. The desk's own limits apply in every mode: the half-spread is floored at ``min_spread_bps / 2`` and
capped at ``max_half_spread_bps``, the skew ``|r − s|`` capped at ``max_skew_bps`` (set them to 0 / None
for the bare formulas).

Why the risk controls: real market makers do not stand in front of a crash. They estimate realised
volatility from the marks they see (a time-weighted EWMA of squared log returns per second, which is
unbiased however irregularly they look), widen with it, and *pull* their quotes when

- realised volatility exceeds ``pull_vol``,
- the oracle is older than ``max_oracle_age_s`` (they cannot price),
- the mid dislocates from the oracle by more than ``max_divergence_bps`` (beyond the basis they
  have learned over ``basis_halflife_s``: a sudden gap means informed flow is coming),

and then stay out for ``cooldown_s`` before re-checking. Inventory beyond ``max_inventory`` or margin
usage (maintenance / equity) beyond ``max_margin_usage`` removes only the side that would add to the
inventory (``pull_mode = "side"``) or everything (``"all"``, with the cooldown). Together these are
the "depth evaporation" of real cascades: the liquidity is there in calm markets and gone exactly when
liquidations need it.

Refresh: on a periodic wake (random phase per agent), when the mark leaves ±``refresh_move_bps``
of where it was at the last refresh, and with ``requote_on_fill`` when it hears (``data_latency_ms`` after,
``abm.agents.fills``) that some of its resting orders filled: a real maker requotes on its fills, where one
waiting for its next wake stands with a hole in its ladder and a stale skew meanwhile. A refresh keeps
the orders whose price and size are unchanged (queue priority), moves the others in place with
``modify`` by client id (atomic: the book never shows a level twice or not at all while an update is in
flight), cancels the unwanted and places the missing ones. Refreshes are spaced by at least the agent's
longest possible latency, so every action of the previous refresh has reached the exchange before this
refresh's can: no order is ever orphaned by a race (a fill heard sooner than that defers its refresh).

A scenario's ``mm_withdrawal`` event (``abm.model.events``) asks a market maker to stand aside for a window
(``withdraw``): it cancels its quotes through its context at once, quotes nothing until the window ends
(its wakes and price triggers only cancel whatever the venue has left of its orders), then comes back with
a refresh; on a spot venue the same, on that venue's book.

The market maker trades on a cross-margin account at ``leverage`` and can be liquidated like anyone;
once its equity falls below ``stop_equity_frac`` of its deposit it cancels its orders and stops for
good (``active`` is False). A liquidation leaves about the maintenance margin (1.25% of the notional
for BTC on the Hyperliquid profile, and the notional is at most leverage × deposit: ≤ 12.5% of the
deposit at 10x), so with the default 25% a liquidated market maker stops; one that merely lost three
quarters of its capital stops as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Iterator, Literal, NamedTuple, Optional

import numpy as np

from abm.agents.base import Trader, TraderParams, WakeMode
from abm.agents.fills import Fill
from abm.agents.params import Leverage, PositiveInt, PositiveSeconds, Usdc, number
from abm.config import Problem
from abm.errors import AbmError, InvalidInput
from abm.units import BUY, SECONDS_PER_YEAR, SELL, USDC

if TYPE_CHECKING:
    from abm.model.model import MarketModel

LN2 = math.log(2.0)
PULL_REASONS = ("volatility", "oracle_stale", "divergence", "inventory", "margin", "withdrawn")


# ---------------------------------------------------------------------- pricing (pure functions)

MAX_START_HALF_SPREAD = 0.05  # of the price, at vol_init: above it gamma/kappa were meant for another price scale


def reservation_price(s: float, q: float, gamma: float, sigma: float, tau: float) -> float:
    """Avellaneda–Stoikov reservation price r = s − q·γ·σ²·τ (a long inventory lowers it)."""
    return s - q * gamma * sigma * sigma * tau


def half_spread(gamma: float, sigma: float, tau: float, kappa: float, floor: float = 0.0) -> float:
    """Optimal half-spread δ = γσ²τ/2 + (1/γ)·ln(1 + γ/κ), at least ``floor`` (same units as prices)."""
    return max(gamma * sigma * sigma * tau / 2.0 + math.log1p(gamma / kappa) / gamma, floor)


def glft_half_spreads(q: float, gamma: float, kappa: float, sigma: float, a: float) -> tuple[float, float]:
    """(δ_b, δ_a): the asymptotic closed-form quotes of Guéant, Lehalle & Fernandez-Tapia (2013, section 4),

        δ_b(q) = (1/γ)·ln(1 + γ/κ) + ((2q + 1)/2)·C,    δ_a(q) = (1/γ)·ln(1 + γ/κ) − ((2q − 1)/2)·C,
        C = sqrt( σ²γ / (2κA) · (1 + γ/κ)^(1 + κ/γ) ),

    distances below and above the reference price, for inventory ``q`` (base units), risk aversion ``gamma``
    (per quote unit), decay ``kappa`` (per quote unit of distance), ``sigma`` (quote units per √second) and
    the arrival scale ``a`` (fills per second of a quote at the reference: λ(δ) = A·e^(−κδ))."""
    base = math.log1p(gamma / kappa) / gamma
    c = glft_inventory_term(gamma, kappa, sigma, a)
    return base + (2.0 * q + 1.0) / 2.0 * c, base - (2.0 * q - 1.0) / 2.0 * c


def glft_inventory_term(gamma: float, kappa: float, sigma: float, a: float) -> float:
    """GLFT's C = sqrt(σ²γ/(2κA)·(1 + γ/κ)^(1 + κ/γ)): the skew per unit of inventory and the spread above 2/γ·ln(1 + γ/κ)."""
    return math.sqrt(sigma * sigma * gamma / (2.0 * kappa * a) * (1.0 + gamma / kappa) ** (1.0 + kappa / gamma))


def time_left_s(t_us: int, horizon: str, tau_s: float, end_us: int, session_us: int) -> float:
    """Avellaneda–Stoikov's T − t in seconds at ``t_us``: ``tau_s`` at every instant ("fixed"), the time to the run's
    end ``end_us`` ("run", never below 0), or to the end of the current session of ``session_us`` µs ("session":
    sessions start at 0, one session, two sessions, ..., so T − t runs from the session's length down to 1 µs)."""
    if horizon == "fixed":
        return tau_s
    if horizon == "run":
        return max(0, end_us - t_us) / 1e6
    return (session_us - t_us % session_us) / 1e6


def deep_ladder(levels: int, from_bps: float, to_bps: float, first_lots: float, growth: float) -> list[tuple[float, int]]:
    """(distance as a fraction of the price, lots) of each deep level: geometric in distance, growing in size."""
    out = []
    for j in range(levels):
        frac = j / (levels - 1) if levels > 1 else 0.0
        dist = from_bps * (to_bps / from_bps) ** frac / 1e4
        out.append((dist, max(1, round(first_lots * (1.0 + growth) ** j))))
    return out


def deep_grid(s: float, dist: float) -> int:
    """The price grid (ticks, a power of two near a tenth of the level's distance) a deep level snaps to, so
    it keeps its price and queue place until the reference moves a tenth of the way to it, rather than being
    modified on every refresh."""
    return 1 << max(0, int(math.log2(max(1.0, s * dist / 10.0))))


def annual_to_var_per_s(vol: float) -> float:
    """An annualised volatility (0.5 = 50%) as a variance of log returns per second."""
    return vol * vol / SECONDS_PER_YEAR


def var_per_s_to_annual(var: float) -> float:
    return math.sqrt(max(var, 0.0) * SECONDS_PER_YEAR)


# ---------------------------------------------------------------------- parameters

Positive = Annotated[float, number(gt=0)]
NonNegative = Annotated[float, number(ge=0)]
PerSecond = Annotated[float, number(gt=0, unit="per second")]


@dataclass(frozen=True, slots=True)
class MarketMakerParams(TraderParams):
    """Human units: sizes in base units, prices and money in USDC, distances in bps, times in seconds,
    volatilities annualised (0.5 = 50%/year, as a market's ``sigma``). A threshold of None disables
    that control."""

    deposit_usdc: Usdc = 500_000.0
    wake: WakeMode = "periodic"  # the quote-refresh schedule
    wake_every_s: PositiveSeconds = 2.0
    leverage: Leverage = 10  # cross-margin leverage set on the account
    # ladder
    n_levels: PositiveInt = 5  # price levels per side
    level_size: Positive = 0.5  # base units at the first level
    size_growth: NonNegative = 0.15  # each deeper level is (1 + size_growth) times the previous one
    level_spacing_bps: NonNegative = 2.0  # distance between consecutive levels of one side
    min_spread_bps: NonNegative = 2.0  # floor of the quoted spread (2·δ) at the first level
    # The deep ladder: resting interest out to several percent, as real books hold (the average profile of
    # Bouchaud, Mézard & Potters 2002 peaks away from the best price and decays slowly, so cumulative depth
    # keeps growing with distance). Levels geometrically spaced from deep_from_bps to deep_to_bps off the
    # reservation price, the first deep_size x level_size, each next (1 + deep_size_growth) times larger.
    # Off by default until the catalogue's stories move to order flow (one recalibration, one golden update);
    # deep_levels = 6 gives the profile documented in docs/design.md.
    deep_levels: Annotated[int, number(ge=0)] = 0  # 0: the near ladder only
    deep_from_bps: Positive = 25.0
    deep_to_bps: Positive = 500.0
    deep_size: Positive = 2.0  # in multiples of level_size
    deep_size_growth: NonNegative = 0.3
    # Cap on the quoted half-spread δ: in a volatility spike γσ²τ/2 grows with σ², and a maker quoting several
    # percent wide into an empty book would set absurd fill prices rather than stepping back (it pulls instead).
    max_half_spread_bps: Optional[Positive] = None  # e.g. 200; None: uncapped (the default, for now)

    def cross_checks(self) -> Iterator[Problem]:
        if self.deep_levels > 1 and not self.deep_from_bps < self.deep_to_bps:
            yield Problem("deep_to_bps", self.deep_to_bps,
                          f"must be a number above deep_from_bps = {self.deep_from_bps:g} (the deep ladder runs outward)")
        if self.deep_levels and not self.deep_to_bps < 10_000:
            yield Problem("deep_to_bps", self.deep_to_bps, "must be a number below 10000 (a bid at or below zero)")
        if self.horizon == "session" and self.session_s is None:
            yield Problem("session_s", None, "must be a number > 0 (seconds) with horizon = 'session' (the session's length)")
        if self.horizon != "session" and self.session_s is not None:
            yield Problem("session_s", self.session_s, "applies only with horizon = 'session'; set horizon or leave it out")
        if self.quoting == "glft" and self.arrival_a is None:
            yield Problem("arrival_a", None, "must be a number > 0 (per second) with quoting = 'glft' (its arrival scale A)")
        if self.quoting != "glft" and self.arrival_a is not None:
            yield Problem("arrival_a", self.arrival_a, "applies only with quoting = 'glft'; set quoting or leave it out")
        if self.quoting == "glft" and self.horizon != "fixed":
            yield Problem("horizon", self.horizon, "must be 'fixed' with quoting = 'glft' (its closed form is the "
                                                   "stationary one, without a horizon)")
    # Avellaneda–Stoikov / GLFT
    gamma: Positive = 0.01  # risk aversion, per USDC
    kappa: Positive = 0.17  # order-arrival decay, per USDC of distance
    tau_s: Positive = 60.0  # the horizon T − t of horizon = "fixed" (seconds)
    # The quoting model: "as", Avellaneda & Stoikov (2008) over the horizon below; "glft", the asymptotic closed form
    # of Guéant, Lehalle & Fernandez-Tapia (2013), stationary (no horizon), with the arrival scale arrival_a
    quoting: Literal["as", "glft"] = "as"  # "as": Avellaneda-Stoikov; "glft": Guéant-Lehalle-Fernandez-Tapia's closed form
    # T − t of "as": "fixed" tau_s at every refresh; "run" the time left to the run's end (0 at the end); "session"
    # the time left in the current session of session_s (sessions from t = 0, each restarting the count-down)
    horizon: Literal["fixed", "run", "session"] = "fixed"  # T − t: tau_s; to the run's end; to the session's end
    session_s: Optional[PositiveSeconds] = None  # horizon = "session": each session's length (from t = 0)
    arrival_a: Optional[PerSecond] = None  # GLFT's A: fills per second of a quote at the reference, λ(δ) = A·e^(−κδ)
    # refresh data_latency_ms after any of its resting orders fills (abm.agents.fills), not only on wakes and marks
    requote_on_fill: bool = False  # requote data_latency_ms after its own fills
    # Cap on |reservation − reference|: q·γ·σ²·τ grows with the square of volatility, so in a vol spike a
    # large inventory would otherwise put quotes at several times the price (seen on thin books).
    max_skew_bps: Optional[Positive] = 100.0
    reference: Literal["mid", "mark", "oracle"] = "mid"  # the price s; the others are fallbacks
    # Anchoring: s = (1 - w) x reference + w x the market's value as observed value_lag_s ago (ctx.value, the
    # exogenous information), so a maker does not chase a book that forced flow has pushed away from value
    value_weight: Annotated[float, number(ge=0, le=1)] = 0.0
    value_lag_s: Annotated[float, number(ge=0, unit="seconds")] = 0.0
    # volatility estimate (EWMA of squared log returns of the mark, per second)
    vol_init: Positive = 0.5
    vol_halflife_s: Positive = 30.0
    # what the estimate reads: the mark (the perp's smoothed price; on a spot venue its last trade, whose
    # bid-ask bounce alone can read as a volatility spike), the book mid, or the oracle (the index a hedged
    # maker hedges against: a thin book's own jumps, which its wide quotes cause, do not feed back)
    vol_from: Literal["mark", "mid", "oracle"] = "mark"
    # refresh triggers
    refresh_move_bps: Positive = 3.0  # requote when the mark moves this far from the last refresh
    # risk controls
    pull_vol: Optional[Positive] = 3.0  # annualised realised vol above which quotes are pulled
    max_inventory: Optional[Positive] = 10.0  # |position| in base units
    max_oracle_age_s: Optional[Positive] = 10.0
    max_divergence_bps: Optional[Positive] = 50.0  # |mid − oracle| beyond the learned basis
    basis_halflife_s: NonNegative = 60.0  # EWMA of (mid − oracle) accepted as basis; 0: none (raw gap)
    max_margin_usage: Optional[Positive] = 0.5  # cross maintenance / cross equity
    pull_mode: Literal["side", "all"] = "side"  # inventory/margin breaches pull only the adding side, or all
    cooldown_s: Positive = 30.0  # stay out this long after a full pull, then re-check
    # stop for good when equity < this fraction of the deposit (e.g. liquidated)
    stop_equity_frac: Annotated[float, number(ge=0, lt=1)] = 0.25


class Quote(NamedTuple):
    """What the last refresh decided (prices in ticks as floats; ``bid``/``ask`` the first level or None)."""

    t_us: int
    s: float  # reference price
    reservation: float
    half_spread: float
    q: float  # inventory, base units
    vol: float  # annualised estimate used
    bid: Optional[int]
    ask: Optional[int]


# ---------------------------------------------------------------------- the agent

class MarketMaker(Trader):
    kind = "market_maker"
    role = "market_maker"  # what the metrics count it as (inherited by subclasses: abm.model.role_of)
    Params = MarketMakerParams
    p: MarketMakerParams

    def __init__(self, model: MarketModel, rng: np.random.Generator, params: MarketMakerParams, ctx: Any = None) -> None:
        """Set up the cross-margin account at ``leverage`` (a setup-time account setting, like a real desk's)."""
        super().__init__(model, rng, params, ctx)
        ctx = self.ctx
        spec = ctx.spec(self.symbol)
        self._tick = float(spec.tick_size)
        self._lot = float(spec.lot_size)
        if ctx.margined:  # a spot venue has no margin mode or leverage to set
            ctx.set_margin_mode(self.symbol, "cross")
            try:
                ctx.set_leverage(self.symbol, params.leverage)
            except InvalidInput as e:
                raise InvalidInput(f"agents.{self.kind}.leverage", params.leverage, e.allowed) from None
        p = params
        self._sizes = [max(1, round(p.level_size * (1.0 + p.size_growth) ** i / self._lot)) for i in range(p.n_levels)]
        self._deep = deep_ladder(p.deep_levels, p.deep_from_bps, p.deep_to_bps,
                                 p.level_size * p.deep_size / self._lot, p.deep_size_growth)
        self._lots = self._sizes + [lots for _, lots in self._deep]  # every level's size, near then deep
        self._deposit = int(round(p.deposit_usdc * USDC))
        self._var = annual_to_var_per_s(p.vol_init)  # variance of log returns per second
        self._end_us = ctx.end_us if p.horizon == "run" else 0  # T of horizon = "run"
        self._session_us = max(1, int(round(p.session_s * 1e6))) if p.session_s is not None else 1
        self._check_scale()
        self._basis: Optional[float] = None  # EWMA of (mid − oracle) / oracle
        self._last_obs: Optional[tuple[int, float]] = None  # (time, mark ticks) of the last observation
        max_latency = self.latency.max_us
        self._min_gap_us = max(1, max_latency)
        self._last_refresh_us: Optional[int] = None
        self._deferred = False
        self._slots: dict[tuple[int, int], int] = {}  # (side, level) -> client id of the order placed there
        self._out_until = -1  # full pull (cooldown) until this time
        self._away_until = -1  # withdrawn (``withdraw``: a scenario's mm_withdrawal event) until this time
        # telemetry
        self.pull_count = 0  # times a side went out (full or one-sided pulls)
        self.pull_reason: Optional[str] = None  # why quotes are (partly) pulled now; None while quoting fully
        self.pulled_sides: tuple[bool, bool] = (False, False)  # (bids pulled, asks pulled)
        self.last_quote: Optional[Quote] = None
        self.refreshes = 0
        self.fill_notices = 0  # notices of its own fills heard (requote_on_fill), each one refresh
        if p.requote_on_fill:
            ctx.watch_fills(self._on_fills, int(p.data_latency_ms * 1000))

    def _check_scale(self) -> None:
        """Refuse gamma/kappa meant for another price scale: they are per USDC of price distance, so BTC's
        defaults quote a 2 USDC coin several USDC wide, i.e. not at all (a silent, misleading thin book)."""
        mark = self.mark()
        if not mark:
            return
        s_px = mark * self._tick
        p = self.p
        sigma = math.sqrt(self._var) * s_px
        if p.quoting == "glft":
            assert p.arrival_a is not None  # the params' cross-checks
            d = sum(glft_half_spreads(0.0, p.gamma, p.kappa, sigma, p.arrival_a)) / 2.0
        elif p.horizon == "fixed":
            d = half_spread(p.gamma, sigma, p.tau_s, p.kappa)
        else:  # a counting-down horizon may start long (a whole run): only the part set by gamma and kappa
            d = half_spread(p.gamma, sigma, 0.0, p.kappa)
        if d > MAX_START_HALF_SPREAD * s_px:
            raise InvalidInput(
                f"agents.{self.kind}.kappa", self.p.kappa,
                f"with gamma {self.p.gamma} gives a half-spread of {d:.4g} USDC ({d / s_px * 1e4:,.0f} bps) at the "
                f"starting price {s_px:g}; gamma and kappa are per USDC of price distance, so they scale with the "
                f"price: kappa about {1e4 / s_px:.3g} quotes about 1 bp wide here (the half-spread must stay under "
                f"{MAX_START_HALF_SPREAD:.0%} of the price)")

    # ------------------------------------------------------------------ schedule

    def start(self) -> None:
        """First refresh at a random phase of the period, so market makers do not all requote together."""
        if self.wake.mode == "none":
            self.wake_in(1, self._scheduled_wake)
            return
        period = int(self.p.wake_every_s * 1_000_000)
        self.wake_in(1 + int(self.rng.integers(0, max(1, period))), self._scheduled_wake)

    def on_wake(self, t: int) -> None:
        """Scheduled refresh: quotes age even when the price does not move (inventory, volatility, oracle age)."""
        self._refresh(t)

    def on_price(self, t: int, symbol: str, mark: int) -> None:
        """The mark left the band around the last refresh: requote now rather than be picked off."""
        self._refresh(t)

    def withdraw(self, t: int, until_us: int) -> None:
        """Stand aside until ``until_us``: cancel every quote now (one ``cancel_all`` through the context, after the
        agent's latency like any action) and quote nothing until then, whatever the market does; then refresh.

        What a desk does when it pulls out of a market for a while (news it will not stand in front of, a risk
        limit, trouble of its own); a scenario schedules it with an ``mm_withdrawal`` event."""
        if not self.active:
            return
        self._away_until = max(self._away_until, until_us)
        self.pull_reason = "withdrawn"
        self._set_pulled((True, True))
        self._slots.clear()
        self.cancel_all()
        self._last_refresh_us = t  # the next refresh waits until the cancels have landed (FIFO link)
        self.wake_at(until_us, self._come_back)

    def _come_back(self, t: int) -> None:
        if self.active and t >= self._away_until:
            self.pull_reason = None
            self._refresh(t)

    def _deferred_refresh(self, t: int) -> None:
        self._deferred = False
        self._refresh(t)

    def _on_fills(self, t: int, fills: list[Fill]) -> None:
        """Some of its resting orders filled (heard ``data_latency_ms`` after): requote now, inventory changed and
        a level is gone, rather than stand with a hole in the ladder until the next wake (``requote_on_fill``)."""
        if self.active:
            self.fill_notices += 1
            self._refresh(t)

    def on_reject(self, action: str, error: AbmError) -> None:
        """Post-only orders that would cross by the time they land, cancels of orders just filled: normal races."""

    # ------------------------------------------------------------------ observations

    @property
    def vol(self) -> float:
        """Current realised volatility estimate, annualised."""
        return var_per_s_to_annual(self._var)

    def _observe(self, t: int, mark: Optional[int], mid: Optional[float], oracle: Optional[int]) -> None:
        """Update the volatility EWMA from the mark (time-weighted, so irregular looks are unbiased) and the basis."""
        p = self.p
        if p.vol_from == "mid":
            price = mid if mid is not None else (float(mark) if mark is not None else None)
        elif p.vol_from == "oracle":
            price = float(oracle) if oracle else (float(mark) if mark is not None else mid)
        else:
            price = float(mark) if mark is not None else mid
        last = self._last_obs
        if price is not None and price > 0:
            if last is not None and t > last[0]:
                dt = (t - last[0]) / 1e6
                r = math.log(price / last[1])
                w = 1.0 - math.exp(-dt * LN2 / p.vol_halflife_s)
                self._var += w * (r * r / dt - self._var)
                if mid is not None and oracle and p.basis_halflife_s > 0:
                    b = (mid - oracle) / oracle
                    if self._basis is None:
                        self._basis = b
                    else:
                        self._basis += (1.0 - math.exp(-dt * LN2 / p.basis_halflife_s)) * (b - self._basis)
            elif last is None and mid is not None and oracle and p.basis_halflife_s > 0:
                self._basis = (mid - oracle) / oracle
            self._last_obs = (t, price)

    def _full_pull_reason(self, t: int, mid: Optional[float], oracle: Optional[int]) -> Optional[str]:
        p = self.p
        if p.pull_vol is not None and self._var > annual_to_var_per_s(p.pull_vol):
            return "volatility"
        if p.max_oracle_age_s is not None:
            age = self.oracle_age_us()
            if age is None or age > p.max_oracle_age_s * 1e6:
                return "oracle_stale"
        if p.max_divergence_bps is not None and mid is not None and oracle:
            basis = self._basis if p.basis_halflife_s > 0 and self._basis is not None else 0.0
            gap = (mid - oracle) / oracle - basis
            if abs(gap) * 1e4 > p.max_divergence_bps:
                return "divergence"
        return None

    def margin_usage(self) -> float:
        """Cross maintenance margin / cross equity (inf when equity is gone)."""
        s = self.ctx.margin_summary()
        eq = int(s["cross_equity"])  # type: ignore[call-overload]
        mm = int(s["cross_maintenance"])  # type: ignore[call-overload]
        if eq <= 0:
            return math.inf if mm > 0 else 0.0
        return mm / eq

    # ------------------------------------------------------------------ pricing

    def time_left_s(self, t: int) -> float:
        """T − t of the Avellaneda–Stoikov quotes at ``t`` (µs), in seconds (``horizon``)."""
        return time_left_s(t, self.p.horizon, self.p.tau_s, self._end_us, self._session_us)

    def target(self, s: float, q: float, t: Optional[int] = None) -> tuple[float, float]:
        """(reservation price, half-spread) in ticks for reference ``s`` (ticks) and inventory ``q`` (base units) at
        time ``t`` (default now; only a counting-down horizon reads it). The models work in quote units (USDC):
        σ = √(variance of log returns per second) × s is in USDC per √second, γ and κ per USDC, T − t in seconds;
        the one conversion back to ticks is at the end. Bid and ask are then r ∓ d, the GLFT's δ_b and δ_a being
        d ± (r − s)."""
        p = self.p
        s_px = s * self._tick
        sigma = math.sqrt(self._var) * s_px  # USDC per base unit per √s
        if p.quoting == "glft":
            assert p.arrival_a is not None  # the params' cross-checks
            bid_d, ask_d = glft_half_spreads(q, p.gamma, p.kappa, sigma, p.arrival_a)
            r = s_px + (ask_d - bid_d) / 2.0
            d = (bid_d + ask_d) / 2.0
        else:
            tau = p.tau_s if p.horizon == "fixed" else self.time_left_s(self.now if t is None else t)
            r = reservation_price(s_px, q, p.gamma, sigma, tau)
            d = half_spread(p.gamma, sigma, tau, p.kappa)
        if p.max_skew_bps is not None:
            cap = s_px * p.max_skew_bps / 1e4
            r = min(max(r, s_px - cap), s_px + cap)
        d = max(d, s_px * p.min_spread_bps / 2e4)
        if p.max_half_spread_bps is not None:
            d = min(d, max(s_px * p.max_half_spread_bps / 1e4, s_px * p.min_spread_bps / 2e4))
        return r / self._tick, d / self._tick

    def ladder(self, s: float, r: float, d: float, best_bid: Optional[int], best_ask: Optional[int],
               bids: bool, asks: bool) -> dict[tuple[int, int], tuple[int, int]]:
        """(side, level) -> (price ticks, lots): post-only prices that do not cross the book as seen now."""
        p = self.p
        step = s * p.level_spacing_bps / 1e4
        grids = [(dist, deep_grid(s, dist)) for dist, _ in self._deep]
        out: dict[tuple[int, int], tuple[int, int]] = {}
        if bids:  # near levels below r - d, then the deep ones; each strictly below the last, none crossing
            raw = [math.floor(r - d - i * step + 1e-9) for i in range(len(self._sizes))]
            raw += [math.floor(r * (1.0 - dist) / g) * g for dist, g in grids]
            prev = None
            for i, (price, lots) in enumerate(zip(raw, self._lots)):
                if best_ask is not None:
                    price = min(price, best_ask - 1)
                if prev is not None:
                    price = min(price, prev - 1)
                if price < 1:
                    break
                out[(BUY, i)] = (price, lots)
                prev = price
        if asks:
            raw = [math.ceil(r + d + i * step - 1e-9) for i in range(len(self._sizes))]
            raw += [math.ceil(r * (1.0 + dist) / g) * g for dist, g in grids]
            prev = None
            for i, (price, lots) in enumerate(zip(raw, self._lots)):
                if best_bid is not None:
                    price = max(price, best_bid + 1)
                if prev is not None:
                    price = max(price, prev + 1)
                out[(SELL, i)] = (price, lots)
                prev = price
        return out

    def _reference(self, mid: Optional[float], mark: Optional[int], oracle: Optional[int]) -> Optional[float]:
        order = {"mid": (mid, mark, oracle), "mark": (mark, mid, oracle), "oracle": (oracle, mark, mid)}[self.p.reference]
        for v in order:
            if v is not None and v > 0:
                w = self.p.value_weight
                if not w:
                    return float(v)
                value = self.ctx.value(self.symbol, int(self.p.value_lag_s * 1e6)) / self._tick
                return (1.0 - w) * float(v) + w * value
        return None

    # ------------------------------------------------------------------ the refresh

    def _refresh(self, t: int) -> None:
        if not self.active:
            return
        last = self._last_refresh_us
        if last is not None and t - last < self._min_gap_us:
            if not self._deferred:  # too soon: the previous refresh's orders may still be in flight
                self._deferred = True
                self.wake_in(last + self._min_gap_us - t, self._deferred_refresh)
            return
        self._last_refresh_us = t
        if t < self._away_until:  # withdrawn: nothing quoted (cancels what the venue still holds, e.g. after a halt)
            self._reconcile({})
            return
        self.refreshes += 1
        p = self.p
        equity = self.equity()
        if equity <= 0 or equity < p.stop_equity_frac * self._deposit:
            self._slots.clear()
            self.cancel_all()
            self.active = False
            self.pull_reason = "equity"
            return
        v = self.view()
        mark, mid, oracle = self.mark(), v.mid(), self.oracle()
        self._observe(t, mark, mid, oracle)
        q = self.position().size * self._lot
        reason = self._full_pull_reason(t, mid, oracle)
        bids = asks = True
        side_reason = None
        if p.max_inventory is not None and abs(q) > p.max_inventory:
            side_reason = "inventory"
        elif p.max_margin_usage is not None and q and self.margin_usage() > p.max_margin_usage:
            side_reason = "margin"
        if side_reason is not None:
            if p.pull_mode == "all":
                reason = reason or side_reason
            elif q > 0:
                bids = False
            else:
                asks = False
        if reason is not None or t < self._out_until:
            if reason is not None:
                self._out_until = t + int(p.cooldown_s * 1e6)
                self.pull_reason = reason
            self._set_pulled((True, True))
            self._reconcile({})
            return
        self.pull_reason = side_reason
        self._set_pulled((not bids, not asks))
        s = self._reference(mid, mark, oracle)
        if s is None:
            self._reconcile({})
            return
        r, d = self.target(s, q, t)
        want = self.ladder(s, r, d, v.best_bid(), v.best_ask(), bids, asks)
        self._reconcile(want)
        b0, a0 = want.get((BUY, 0)), want.get((SELL, 0))
        self.last_quote = Quote(t, s, r, d, q, self.vol, b0[0] if b0 else None, a0[0] if a0 else None)
        if mark is not None:
            move = max(1, int(mark * p.refresh_move_bps / 1e4))
            self.watch_price(mark - move, mark + move)

    def _set_pulled(self, sides: tuple[bool, bool]) -> None:
        """Record which sides are out; a side going out counts as one more pull."""
        if (sides[0] and not self.pulled_sides[0]) or (sides[1] and not self.pulled_sides[1]):
            self.pull_count += 1
        self.pulled_sides = sides

    def _reconcile(self, want: dict[tuple[int, int], tuple[int, int]]) -> None:
        """Make the resting ladder ``want``: keep orders that match, move the others in place (``modify``, one
        atomic action, so the book never shows a level twice or not at all), cancel what is no longer wanted
        and place what is missing, all by client id."""
        ctx = self.ctx
        live = self.open_orders() if ctx.orders else {}
        client_ids = ctx.client_ids
        known = set()
        for key in list(self._slots):
            cid = self._slots[key]
            oid = client_ids.get(cid)
            if oid is None:  # filled, rejected or cancelled by the venue (e.g. a liquidation)
                del self._slots[key]
                continue
            known.add(oid)
            _, _, price, left = live[oid]
            w = want.get(key)
            if w is None:
                self.cancel(client_id=cid)
                del self._slots[key]
            elif w != (price, left):
                self.modify(cid, price=w[0] if w[0] != price else None, qty=w[1] if w[1] != left else None)
        for oid, (sym, _, _, _) in live.items():  # nothing should be unaccounted for; if it is, do not leave it
            if oid not in known and sym == self.symbol:
                self.cancel(oid=oid)
        for key, (price, lots) in want.items():
            if key not in self._slots:
                cid = self.next_cid()
                self.limit(key[0], lots, price, post_only=True, client_id=cid)
                self._slots[key] = cid


__all__ = ["MarketMaker", "MarketMakerParams", "Quote", "reservation_price", "half_spread", "glft_half_spreads",
           "glft_inventory_term", "time_left_s"]
