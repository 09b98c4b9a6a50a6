"""Assert that quantdag.backtest reproduces vectorbt and backtesting.py; exit 1 if it does not.

Setting: SMA(10/50) crossover, fill at the signal candle's close, 0.1 % fee per side, no
slippage, all-in long-only, 10,000 cash. Agreement: the same number of trades (the one still
open included) and final equity within 1e-9 relative, against vectorbt's ``from_signals`` on
both its rust and numba engines and backtesting.py's ``FractionalBacktest(trade_on_close=True)``.
Data: every hourly and daily Kraken BTC file in ``../shared/data`` plus a 200,000-candle
synthetic crypto-like series. Run from the peers venv (see ``benchmarks/backtest.py``)::

    .venv-peers/bin/python benchmarks/peers_agree.py
"""

from __future__ import annotations

import sys

from backtest import compare, real_candles, synthetic_candles

DATASETS = [
    ("kraken", "BTC_USDT", "1h"), ("kraken", "BTC_USD", "1h"), ("kraken", "BTC_USDC", "1h"),
    ("kraken", "BTC_USDT", "15m"), ("kraken", "BTC_USD", "5m"), ("kraken", "BTC_USD", "1d"),
]  # fmt: skip


def main() -> int:
    frames = [(f"{ex}/{mk}-{tf}", real_candles(ex, mk, tf)) for ex, mk, tf in DATASETS]
    frames.append(("synthetic-200k-1h", synthetic_candles(200_000, seed=11)))
    failed = 0
    for name, candles in frames:
        out = compare(candles, budget_s=0.0, label=name)
        for peer, a in out["agree"].items():
            status = "OK  " if a["ok"] else "FAIL"
            failed += not a["ok"]
            print(
                f"{status} {name:<22} {candles.height:>7} candles  vs {peer:<15} trades {a['trades'][0]:>5} / "
                f"{a['trades'][1]:<5} final equity {a['final_equity'][0]:.10f} / {a['final_equity'][1]:.10f}  "
                f"rel diff {a['rel_diff']:.1e}"
                + ("  (last-candle signal cleared)" if out["last_candle_signal_cleared"] else "")
            )
    print(f"{'all agree' if not failed else f'{failed} disagreement(s)'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
