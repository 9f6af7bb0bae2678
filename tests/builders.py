"""Short builders of scenario data for tests: the same keywords the tests had, producing what a scenario
file says (the model's one configuration), so every test model goes through the scenario's validation."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional


def shock(start_s: float, duration_s: float, pct: float) -> dict[str, Any]:
    return {"start_s": start_s, "duration_s": duration_s, "pct": pct}


def market(**fields: Any) -> dict[str, Any]:
    """A ``[[markets]]`` table; tuples (shocks, outage windows) become the lists a file would hold."""
    out = dict(fields)
    if "shocks" in out:
        out["shocks"] = [dict(s) if isinstance(s, Mapping) else shock(*s) for s in out["shocks"]]
    if "oracle_outages_s" in out:
        out["oracle_outages_s"] = [list(w) for w in out["oracle_outages_s"]]
    return out


def group(kind: str, count: int = 1, params: Optional[Mapping[str, Any]] = None,
          name: Optional[str] = None) -> tuple[str, dict[str, Any]]:
    """One ``[agents.NAME]`` table as (name, table); the name defaults to the kind."""
    return (name or kind, {"kind": kind, "count": count, **dict(params or {})})


def scenario(seed: int = 1, duration_s: float = 3_600.0, step_s: float = 1.0, venue: str = "hyperliquid",
             venue_overrides: Optional[Mapping[str, Any]] = None, markets: Iterable[Mapping[str, Any]] = ({},),
             agents: Iterable[tuple[str, Mapping[str, Any]]] = (), insurance_usdc: float = 1_000_000.0,
             vault_usdc: float = 5_000_000.0, mark_cadence_s: float = 1.0,
             correlation: Optional[Iterable[Iterable[float]]] = None, name: str = "test") -> dict[str, Any]:
    groups: dict[str, Any] = {}
    for n, table in agents:
        assert n not in groups, f"two test groups named {n!r}"
        groups[n] = dict(table)
    out: dict[str, Any] = {
        "name": name,
        "run": {"seed": seed, "duration_s": duration_s, "step_s": step_s, "mark_cadence_s": mark_cadence_s},
        "venue": {"profile": venue, "overrides": dict(venue_overrides or {})},
        "funds": {"insurance_usdc": insurance_usdc, "vault_usdc": vault_usdc},
        "markets": [market(**m) for m in markets],
        "agents": groups,
    }
    if correlation is not None:
        out["correlation"] = [list(r) for r in correlation]
    return out
