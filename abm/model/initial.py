"""Open interest in place when the run starts (``[[initial_positions]]``): a crowd's positions drawn from stated laws,
booked by the exchange's opening settlement against a counterparty group, so a run needs no warm-up trading.

Why like this:
- The exchange books them (``Exchange.seed_positions``): one call per market at t = 0, before any agent acts, each
  holder's position paired with a counterparty's at the holder's entry price, no fee, and what each position must
  be worth at the mark deposited from outside. So conservation holds from the first event, every market's net is
  zero, and the trades table shows each pair as a row with order ids 0 (``opening`` True).
- Every holder draws from its own stream ``("initial", group, symbol, index)``, five uniforms in a fixed order (side,
  size, leverage, entry, margin mode), each turned into its law by inversion: resizing a group or adding one never
  changes another group's draws (a group's own sizes are renormalised to its notional, so its lots do change).
- Leverage is the snapshot's: a holder's position is worth exactly ceil(notional at s0 / leverage) at the start
  (its margin at the mark, from a deposit beside its group's deposit_usdc), so every holder starts above its
  maintenance margin and the distance to liquidation is set by its leverage alone. Entries are uniform within
  ``entry_spread_pct`` of s0 in ticks, the profitable side cut at s0 -+ s0/leverage (else the deposit would be
  negative); they set the realised PnL of exits, stops and take-profits, and the ADL queue's profit ranking.
- A drawn leverage above the venue's tier maximum for the position's size is the tier maximum (the venue would
  not let the position exist otherwise); the scenario's stated maximum above the venue's top is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from math import exp, floor, log
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Iterator, Optional

from abm.config import Problem
from abm.market.spec import MAX_MONEY
from abm.units import USDC

if TYPE_CHECKING:
    from abm.model.model import MarketModel
    from abm.model.scenario import InitialPositionsSection, Scenario

_N = NormalDist()


@dataclass(frozen=True, slots=True)
class Holding:
    """One holder's drawn position: lots (signed), entry (ticks), leverage and mode, and its raw leverage draw."""

    index: int
    lots: int
    entry: int
    leverage: int
    mode: str
    leverage_raw: float
    weight: float


def raw_leverage(dist: Any, u: float) -> float:
    """The leverage law's ``u`` quantile (every law by inversion: one uniform per holder whatever its parameters)."""
    if dist.dist == "fixed":
        return float(dist.value)
    lo, hi = dist.min, dist.max
    if dist.dist == "uniform":
        return lo + u * (hi - lo)
    if dist.dist == "pareto":
        if hi <= lo:
            return lo
        return lo * (1.0 - u * (1.0 - (lo / hi) ** dist.alpha)) ** (-1.0 / dist.alpha)
    a, b = _N.cdf(log(lo / dist.median) / dist.sigma), _N.cdf(log(hi / dist.median) / dist.sigma)
    q = min(max(a + u * (b - a), 1e-300), 1.0 - 1e-16)
    return float(min(max(dist.median * exp(dist.sigma * _N.inv_cdf(q)), lo), hi))


def size_weight(dist: Any, u: float) -> float:
    """A holder's relative size (the group's notional is shared in proportion)."""
    if dist.dist == "equal":
        return 1.0
    if dist.dist == "lognormal":
        return exp(dist.sigma * _N.inv_cdf(min(max(u, 1e-300), 1.0 - 1e-16)))
    return (1.0 - u) ** (-1.0 / dist.alpha)


def apportion(total: int, weights: list[float]) -> list[int]:
    """``total`` lots shared by ``weights``, one lot each first, the rest by largest remainder (ties: lower index)."""
    n = len(weights)
    rest = total - n
    s = sum(weights)
    quotas = [rest * w / s for w in weights]
    out = [1 + floor(q) for q in quotas]
    left = total - sum(out)
    order = sorted(range(n), key=lambda i: (-(quotas[i] - floor(quotas[i])), i))
    for i in order[:left]:
        out[i] += 1
    return out


def total_lots(notional_usdc: float, mark: int, multiplier: int, quote_decimals: int = 6) -> int:
    """The lots a notional is at the mark (ticks), half to even: what the holders hold in all."""
    units = Decimal(repr(notional_usdc)) * (10 ** quote_decimals)
    return int((units / (mark * multiplier)).to_integral_value())


def draw_holdings(section: InitialPositionsSection, seed: int, count: int, mark: int, multiplier: int,
                  tier_max: Any, quote_decimals: int = 6, symbol: Optional[str] = None) -> list[Holding]:
    """Every holder's position in one market, from its own stream (``tier_max(notional) -> int``: the venue's limit;
    ``symbol``: the market, which keys the streams, when the section leaves it to the first)."""
    from abm.model.model import stream

    sym = symbol or section.symbol or ""
    total = total_lots(section.notional_usdc, mark, multiplier, quote_decimals)
    if total < count:  # a replay market's s0 is known only now (parse_scenario checks the others)
        from abm.errors import InvalidInput

        raise InvalidInput("initial_positions.notional_usdc", section.notional_usdc,
                           f"is {total} lots at the start; must be at least one lot for each of the {count} holders")
    draws = [stream(seed, "initial", section.group, sym, i).random(5) for i in range(count)]
    weights = [size_weight(section.size, float(d[1])) for d in draws]
    lots = apportion(total, weights)
    spread = floor(Decimal(mark) * Decimal(repr(section.entry_spread_pct)) / 100)
    out = []
    for i, d in enumerate(draws):
        long = float(d[0]) < section.long_share
        raw = raw_leverage(section.leverage, float(d[2]))
        lev = max(1, min(int(round(raw)), tier_max(lots[i] * mark * multiplier)))
        lo, hi = max(1, mark - spread), mark + spread
        if long:
            lo = max(lo, mark - mark // lev)
        else:
            hi = min(hi, mark + mark // lev)
        entry = min(hi, lo + floor(float(d[3]) * (hi - lo + 1)))
        m = section.margin_mode
        mode = "isolated" if m == "isolated" or (m == "mixed" and float(d[4]) < section.isolated_share) else "cross"
        out.append(Holding(i, lots[i] if long else -lots[i], entry, lev, mode, raw, weights[i]))
    return out


def seed_open_interest(model: MarketModel) -> None:
    """Book every ``[[initial_positions]]`` entry through the exchange, one opening settlement per market, and tell
    each agent that holds a position (``Trader.on_initial_position``)."""
    cfg, ex = model.config, model.exchange
    by_symbol: dict[str, list[InitialPositionsSection]] = {}
    for section in cfg.initial_positions:
        by_symbol.setdefault(section.symbol or model.symbols[0], []).append(section)
    model.initial_holdings = {}
    for symbol, sections in by_symbol.items():
        m = ex.market(symbol)
        mark = ex.risk.marks[m.index]
        mult = m.spec.multiplier
        tiers = ex.risk.params[m.index].tiers
        pairs: list[tuple[int, int, int, int]] = []
        equity: dict[int, int] = {}
        told: list[tuple[Any, Optional[int], Optional[str]]] = []
        for section in sections:
            holders = model.agents_by_group[section.group]
            cps = model.agents_by_group[section.counterparty]
            hold = draw_holdings(section, cfg.run.seed, len(holders), mark, mult, tiers.max_leverage,
                                 m.spec.quote_decimals, symbol)
            model.initial_holdings[(section.group, symbol)] = hold
            net: dict[int, int] = {}
            for h in hold:
                a, c = holders[h.index], cps[h.index % len(cps)]
                ex.set_margin_mode(a.account, symbol, h.mode)
                ex.set_leverage(a.account, symbol, h.leverage)
                q = abs(h.lots)
                pairs.append((a.account, c.account, q, h.entry) if h.lots > 0 else (c.account, a.account, q, h.entry))
                equity[a.account] = -(-q * mark * mult // h.leverage)
                net[c.account] = net.get(c.account, 0) - h.lots
                told.append((a, h.leverage, h.mode))
            for c in cps:
                if c.account in net:
                    equity[c.account] = -(-abs(net[c.account]) * mark * mult // section.counterparty_leverage)
                    told.append((c, None, None))
        ex.seed_positions(symbol, pairs, equity)
        for agent, lev, mode in told:
            agent.on_initial_position(symbol, lev, mode)


def check_initial_positions(scn: Scenario) -> Iterator[Problem]:
    """Groups that exist, one role per group and market, holders of a kind that manages a position, leverage the
    venue allows, enough lots for one per holder and money that fits the ledgers."""
    from abm.agents import resolve
    from abm.errors import InvalidInput
    from abm.model.scenario import agent_groups

    groups = {name: (kind, count, params) for name, kind, count, params in agent_groups(scn)}
    markets = {m.symbol: m for m in scn.markets}
    roles: dict[tuple[str, str], str] = {}
    for j, s in enumerate(scn.initial_positions):
        at = f"initial_positions[{j}]"
        symbol = s.symbol or scn.markets[0].symbol
        if s.symbol is not None and s.symbol not in markets:
            yield Problem(f"{at}.symbol", s.symbol, f"must be one of the scenario's markets {sorted(markets)}")
            continue
        for field, name in (("group", s.group), ("counterparty", s.counterparty)):
            if name not in groups:
                yield Problem(f"{at}.{field}", name, f"must be one of the scenario's agent groups {sorted(groups)}")
                continue
            kind, count, params = groups[name]
            if type(count) is int and count < 1:
                yield Problem(f"{at}.{field}", name, f"must be a group with agents (agents.{name}.count is {count})")
            if params.get("venue") is not None:
                yield Problem(f"{at}.{field}", name, f"must trade on the perp venue (agents.{name}.venue is "
                                                     f"{params['venue']!r})")
            sym = params.get("symbol") or scn.markets[0].symbol
            if "symbols" not in params and sym != symbol:
                yield Problem(f"{at}.{field}", name, f"must trade {symbol} (agents.{name}.symbol is {sym!r})")
            key = (name, symbol)
            if key in roles:
                yield Problem(f"{at}.{field}", name, f"already {roles[key]} in {symbol} (a group holds one role per "
                                                     "market)")
            roles[key] = "holds positions" if field == "group" else "is a counterparty"
            if field == "group" and isinstance(kind, str):
                try:
                    cls = resolve(kind)
                except InvalidInput:
                    continue  # refused by name elsewhere
                if not getattr(cls, "initial_position", False):
                    yield Problem(f"{at}.group", name, f"has kind {kind!r}, which does not manage a position it starts "
                                                       "with (leveraged does; a kind declares initial_position = True "
                                                       "and on_initial_position)")
        lev = s.leverage
        if lev.dist != "fixed" and lev.min > lev.max:
            yield Problem(f"{at}.leverage.min", lev.min, f"must be <= leverage.max ({lev.max:g})")
        if lev.dist == "lognormal" and not lev.min <= lev.median <= lev.max:
            yield Problem(f"{at}.leverage.median", lev.median, f"must be in [min, max] = [{lev.min:g}, {lev.max:g}]")
        if s.notional_usdc * 3 > MAX_MONEY / USDC:
            yield Problem(f"{at}.notional_usdc", s.notional_usdc,
                          f"must be <= {MAX_MONEY / USDC / 3:,.0f} USDC (it and its margins must fit the ledgers)")
        yield from _check_venue(at, s, scn, markets[symbol], groups)


def _check_venue(at: str, s: Any, scn: Scenario, market: Any, groups: dict[str, Any]) -> Iterator[Problem]:
    """What needs the venue and the market's grid: the leverage allowed and one lot for every holder."""
    from abm.config import InvalidConfig
    from abm.errors import InvalidInput
    from abm.model.scenario import scenario_venue

    try:
        venue = scenario_venue(scn)
        spec = venue.market_spec(market.symbol, market.tick_size, market.lot_size)
        top = venue.max_leverage(market.tier_class)
    except (InvalidConfig, InvalidInput, KeyError):
        return  # reported by the scenario's own checks
    lev = s.leverage
    hi, field = (lev.value, "value") if lev.dist == "fixed" else (lev.max, "max")
    if hi > top:
        yield Problem(f"{at}.leverage.{field}", hi, f"must be <= {top} (the venue's maximum for {market.symbol}; "
                                                    "refused, not capped)")
    if market.process == "replay":
        return  # s0 comes from the file: the lots are counted at the build
    mark = spec.to_ticks(Decimal(repr(round(market.s0 / float(spec.tick_size)) * float(spec.tick_size))))
    lots = total_lots(s.notional_usdc, mark, spec.multiplier, spec.quote_decimals)
    count = groups.get(s.group, (None, 0, None))[1]
    if type(count) is int and lots < count:
        yield Problem(f"{at}.notional_usdc", s.notional_usdc,
                      f"is {lots} lots at s0; must be at least one lot for each of the {count} holders")


__all__ = ["Holding", "apportion", "check_initial_positions", "draw_holdings", "raw_leverage", "seed_open_interest",
           "size_weight", "total_lots"]
