"""Generate scenarios/data/btc_1s_sample.csv: a SYNTHETIC 30-minute BTC-like index at 1 s.

This is not market data (none can be downloaded where the project is built). It was generated once
with this script and is committed; re-running it with the same parameters reproduces the file byte
for byte. Model: GARCH(1,1) per-second log returns with Student-t shocks (fat tails), plus a scripted
sell-off (a sharp -7% drop over 45 s starting at t = 900 s, a share of which feeds the GARCH
variance so volatility clusters around it) and a partial rebound.

    python scenarios/data/make_btc_1s_sample.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 20240805
N_SECONDS = 1800          # 30 minutes, rows at t = 0, 1, ..., 1800 s
S0 = 64_250.0             # starting price (USDC)
ANNUAL_VOL = 0.55         # long-run annualised volatility of the GARCH part
ALPHA, BETA = 0.08, 0.90  # GARCH(1,1) per-second reaction and persistence
T_DF = 4                  # Student-t degrees of freedom of the shocks (scaled to unit variance)
DROP_START_S, DROP_LEN_S, DROP_PCT = 900, 45, -7.0   # the sharp drop
REBOUND_LEN_S, REBOUND_PCT = 240, 2.5                # the partial rebound right after it
TICK = 0.1
DROP_FEEDBACK = 0.1        # share of the scripted move fed into the GARCH variance


def generate() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    h = 1.0 / (365 * 86_400)
    omega = ANNUAL_VOL**2 * h * (1 - ALPHA - BETA)
    z = rng.standard_t(T_DF, N_SECONDS) / np.sqrt(T_DF / (T_DF - 2))
    script = np.zeros(N_SECONDS)
    script[DROP_START_S:DROP_START_S + DROP_LEN_S] = np.log1p(DROP_PCT / 100) / DROP_LEN_S
    rb0 = DROP_START_S + DROP_LEN_S
    script[rb0:rb0 + REBOUND_LEN_S] = np.log1p(REBOUND_PCT / 100) / REBOUND_LEN_S
    s2 = omega / (1 - ALPHA - BETA)
    r = np.empty(N_SECONDS)
    for k in range(N_SECONDS):
        eps = np.sqrt(s2) * z[k]
        r[k] = eps - 0.5 * s2 + script[k]
        s2 = omega + ALPHA * (eps + DROP_FEEDBACK * script[k]) ** 2 + BETA * s2  # the drop raises volatility
    price = S0 * np.exp(np.concatenate(([0.0], np.cumsum(r))))
    return np.arange(N_SECONDS + 1), np.round(price / TICK) * TICK


def main() -> None:
    t, p = generate()
    out = Path(__file__).with_name("btc_1s_sample.csv")
    with out.open("w") as f:
        f.write("time,price\n")
        for ti, pi in zip(t, p):
            f.write(f"{ti},{pi:.1f}\n")
    print(f"wrote {out}: {len(t)} rows, {p.min():.1f}..{p.max():.1f}")


if __name__ == "__main__":
    main()
