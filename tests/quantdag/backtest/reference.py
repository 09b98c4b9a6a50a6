"""Plain-Python reference of the backtest kernel: the oracle of the property tests.

Written as an event-driven object (one :class:`Sim` holding an optional open :class:`Trade`)
rather than the kernel's flat state vector and register-cached loop, so a bug in the kernel's
bookkeeping (state re-sync after helpers, cached stop levels, the any-signal pre-pass) shows up
as a disagreement. The cost, sizing and stop arithmetic uses the same formulas in the same
order, so agreement is expected to the last few ulps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from quantdag.backtest import enums

NAN = math.nan
INF = math.inf


def fill_price(ref: float, is_buy: bool, slippage: float) -> float:
    return ref * (1.0 + slippage) if is_buy else ref * (1.0 - slippage)


def fill(ref: float, qty: float, is_buy: bool, fee: float, slippage: float) -> tuple[float, float, float, float]:
    price = fill_price(ref, is_buy, slippage)
    value = qty * price
    fee_paid = value * fee
    slip_cost = qty * ref * slippage
    return price, fee_paid, slip_cost, (-(value + fee_paid) if is_buy else value - fee_paid)


def entry_size(
    size_type: int, size_value: float, equity: float, price: float, fee: float, max_leverage: float
) -> float:
    if not equity > 0.0:
        return 0.0
    if size_type == enums.SIZE_PERCENT:
        qty = size_value * equity / (price * (1.0 + fee))
    elif size_type == enums.SIZE_VALUE:
        qty = size_value / price
    else:
        qty = size_value * equity
    qty = min(qty, max_leverage * equity / (price * (1.0 + fee))) if not math.isnan(qty) else qty
    return qty if qty > 0.0 else 0.0


def target_units(target: float, equity: float, ref: float, fee: float, slippage: float) -> float:
    if target == 0.0 or not equity > 0.0:
        return 0.0
    return target * equity / (fill_price(ref, target > 0.0, slippage) * (1.0 + fee))


def stop_exit(side: float, o: float, h: float, lo: float, sl: float, tp: float, trail: float) -> tuple[float, int]:
    """Long: adverse = tighter of SL/trailing (tie: SL); gap at the open fills at the open; the
    adverse level wins when both it and the TP lie in the bar. Short mirrors it."""
    levels = [(sl, enums.EXIT_STOP_LOSS), (trail, enums.EXIT_TRAILING_STOP)]
    levels = [(p, r) for p, r in levels if not math.isnan(p)]
    if side > 0:
        adverse, reason = max(levels, key=lambda x: (x[0], -x[1])) if levels else (-INF, enums.EXIT_NONE)
        fav = tp if not math.isnan(tp) else INF
        for hit, price, why in (
            (o <= adverse, o, reason),
            (o >= fav, o, enums.EXIT_TAKE_PROFIT),
            (lo <= adverse, adverse, reason),
            (h >= fav, fav, enums.EXIT_TAKE_PROFIT),
        ):
            if hit:
                return price, why
        return NAN, enums.EXIT_NONE
    adverse, reason = min(levels, key=lambda x: (x[0], x[1])) if levels else (INF, enums.EXIT_NONE)
    fav = tp if not math.isnan(tp) else -INF
    for hit, price, why in (
        (o >= adverse, o, reason),
        (o <= fav, o, enums.EXIT_TAKE_PROFIT),
        (h >= adverse, adverse, reason),
        (lo <= fav, fav, enums.EXIT_TAKE_PROFIT),
    ):
        if hit:
            return price, why
    return NAN, enums.EXIT_NONE


def slip_rate(base: float, factor: float, h: float, lo: float, c: float) -> float:
    return base if factor == 0.0 else min(base + factor * (h - lo) / c, 0.99)


def median_step(ts, max_samples: int) -> float:
    step = max(1, (len(ts) - 1) // max_samples)
    return float(np.median([ts[j + 1] - ts[j] for j in range(0, len(ts) - 1, step)]))


def candles_ok(ts, o, h, lo, c, v) -> bool:
    for i in range(len(ts)):
        if i and not ts[i] > ts[i - 1]:
            return False
        if not all(math.isfinite(x) and x > 0 for x in (o[i], h[i], lo[i], c[i])):
            return False
        if not (math.isfinite(v[i]) and v[i] >= 0):
            return False
        if h[i] < max(o[i], c[i]) or lo[i] > min(o[i], c[i]):
            return False
    return True


@dataclass
class Trade:
    side: float
    entry_idx: int
    stop_from: int
    entry_qty: float = 0.0
    entry_value: float = 0.0
    exit_qty: float = 0.0
    exit_value: float = 0.0
    fees: float = 0.0
    slip: float = 0.0
    extreme: float = NAN


@dataclass
class Pending:
    flat: bool
    reason: int


@dataclass
class Sim:
    init_cash: float
    fee: float
    sl: float
    tp: float
    tsl: float
    max_leverage: float
    size_type: int
    cash: float = 0.0
    pos: float = 0.0
    trade: Trade | None = None
    pending: Pending | None = None
    last_target: float = NAN
    cap_left: float = INF
    records: list[list[float]] = field(default_factory=list)
    fees: float = 0.0
    slippage: float = 0.0
    traded: float = 0.0
    n_fills: int = 0
    rejected: dict[str, int] = field(
        default_factory=lambda: {"size_zero": 0, "no_cash": 0, "volume_cap": 0, "capped_fills": 0}
    )

    def __post_init__(self) -> None:
        self.cash = self.init_cash

    # -- orders that cannot be placed in full ------------------------------------------------
    def capped(self, qty: float) -> float:
        """``qty`` limited to the candle's remaining volume; a limit is counted (nothing left:
        a volume-cap rejection, else a capped fill)."""
        if qty <= self.cap_left:
            return qty
        self.rejected["capped_fills" if self.cap_left > 0 else "volume_cap"] += 1
        return self.cap_left

    def unsized(self) -> None:
        """An entry that sized to nothing: no equity (cash, when flat) or a zero/NaN size."""
        self.rejected["no_cash" if not self.cash > 0 else "size_zero"] += 1

    # -- fills -------------------------------------------------------------------------------
    def _execute(self, qty: float, is_buy: bool, ref: float, slip: float) -> float:
        price, fee_paid, slip_cost, delta = fill(ref, qty, is_buy, self.fee, slip)
        self.cash += delta
        assert self.trade is not None
        self.trade.fees += fee_paid
        self.trade.slip += slip_cost
        self.fees += fee_paid
        self.slippage += slip_cost
        self.traded += qty * price
        self.n_fills += 1
        self.cap_left -= qty
        return price

    def increase(self, i: int, side: float, qty: float, ref: float, slip: float, stop_from: int) -> None:
        opening = self.pos == 0.0
        if opening:
            self.trade = Trade(side=side, entry_idx=i, stop_from=stop_from)
        price = self._execute(qty, side > 0, ref, slip)
        if opening:
            self.trade.extreme = price
        self.pos += side * qty
        self.trade.entry_qty += qty
        self.trade.entry_value += qty * price

    def record(self, exit_idx: int, reason: int, mark: float) -> None:
        t = self.trade
        exit_value = t.exit_value + (abs(self.pos) * mark if not math.isnan(mark) else 0.0)
        pnl = t.side * (exit_value - t.entry_value) - t.fees
        self.records.append(
            [
                t.entry_idx,
                exit_idx,
                t.side,
                t.entry_qty,
                t.entry_value / t.entry_qty,
                exit_value / t.entry_qty,
                t.fees,
                t.slip,
                pnl,
                pnl / t.entry_value,
                reason,
                0.0 if math.isnan(mark) else 1.0,
            ]
        )

    def reduce(self, i: int, qty: float, ref: float, slip: float, reason: int) -> None:
        side = 1.0 if self.pos > 0 else -1.0
        price = self._execute(qty, side < 0, ref, slip)
        self.trade.exit_qty += qty
        self.trade.exit_value += qty * price
        if qty >= abs(self.pos):
            self.pos = 0.0
            self.record(i, reason, NAN)
        else:
            self.pos -= side * qty

    def close(self, i: int, ref: float, slip: float, reason: int) -> bool:
        q = self.capped(abs(self.pos))
        if q > 0:
            self.reduce(i, q, ref, slip, reason)
        if self.pos == 0.0:
            self.pending = None
            return True
        if self.pending is None or not self.pending.flat:
            self.pending = Pending(flat=True, reason=reason)
        return False

    # -- decisions ---------------------------------------------------------------------------
    def on_signals(self, i, ref, le, lx, se, sx, size_value, slip, stop_from) -> None:
        if not (le or lx or se or sx or self.pending):
            return
        if le and se:
            le = se = False
        if le and lx:
            le = False
        if se and sx:
            se = False
        if self.pos != 0.0:
            if self.pending is not None:
                reason = self.pending.reason
            elif self.pos > 0 and (lx or se):
                reason = enums.EXIT_SIGNAL if lx else enums.EXIT_REVERSE
            elif self.pos < 0 and (sx or le):
                reason = enums.EXIT_SIGNAL if sx else enums.EXIT_REVERSE
            else:
                return
            if not self.close(i, ref, slip, reason):
                return
        if le or se:
            price = fill_price(ref, le, slip)
            qty = entry_size(self.size_type, size_value, self.cash, price, self.fee, self.max_leverage)
            if qty == 0:
                self.unsized()
                return
            qty = self.capped(qty)
            if qty > 0:
                self.increase(i, 1.0 if le else -1.0, qty, ref, slip, stop_from)

    def on_target(self, i, tg_new, ref, slip, stop_from) -> None:
        fresh = not math.isnan(tg_new) and tg_new != self.last_target
        if fresh:
            self.last_target = tg_new
        elif self.pending is None:
            return
        elif self.pending.flat:
            self.close(i, ref, slip, self.pending.reason)
            return
        tg = self.last_target
        want = target_units(tg, self.cash + self.pos * ref, ref, self.fee, slip)
        if self.pos != 0.0 and (want == 0.0 or (want > 0) != (self.pos > 0)):
            if not self.close(i, ref, slip, enums.EXIT_SIGNAL) or not fresh:
                return
            want = target_units(tg, self.cash, ref, self.fee, slip)
        if self.pos == 0.0:
            self.pending = None
            if fresh and want != 0.0:
                qty = self.capped(abs(want))
                if qty > 0:
                    self.increase(i, 1.0 if want > 0 else -1.0, qty, ref, slip, stop_from)
            elif fresh and tg != 0.0:
                self.unsized()
            return
        side = 1.0 if self.pos > 0 else -1.0
        gap = abs(want) - abs(self.pos)
        if gap < 0:
            q = self.capped(-gap)
            if q > 0:
                self.reduce(i, q, ref, slip, enums.EXIT_SIGNAL)
            self.pending = Pending(flat=False, reason=enums.EXIT_SIGNAL) if q < -gap else None
            return
        self.pending = None
        if gap > 0 and fresh:
            q = self.capped(gap)
            if q > 0:
                self.increase(i, side, q, ref, slip, stop_from)

    def on_stops(self, i, o, h, lo, slip) -> None:
        t = self.trade
        if self.pos == 0.0 or not (self.sl > 0 or self.tp > 0 or self.tsl > 0) or i < t.stop_from:
            return
        side = 1.0 if self.pos > 0 else -1.0
        avg = t.entry_value / t.entry_qty
        sl = avg * (1.0 - side * self.sl) if self.sl > 0 else NAN
        tp = avg * (1.0 + side * self.tp) if self.tp > 0 else NAN
        trail = NAN
        if self.tsl > 0:
            t.extreme = max(t.extreme, o) if side > 0 else min(t.extreme, o)
            trail = t.extreme * (1.0 - side * self.tsl)
        price, reason = stop_exit(side, o, h, lo, sl, tp, trail)
        if reason != enums.EXIT_NONE:
            self.close(i, price, slip, reason)
        elif self.tsl > 0:
            t.extreme = max(t.extreme, h) if side > 0 else min(t.extreme, lo)


def simulate(
    o,
    h,
    lo,
    c,
    v,
    le,
    lx,
    se,
    sx,
    target,
    size,
    slip,
    *,
    mode,
    fill_code,
    size_type,
    init_cash,
    fee,
    sl,
    tp,
    tsl,
    max_leverage,
    max_volume_share,
    slip_vol_factor=0.0,
) -> dict:
    """Same inputs and outputs as ``simulate_nb`` (records as a list of rows, stats as a dict)."""
    n = len(c)
    sim = Sim(init_cash, fee, sl, tp, tsl, max_leverage, size_type)
    equity, cash, pos = np.empty(n), np.empty(n), np.empty(n)
    base = np.broadcast_to(np.asarray(slip, dtype=float), (n,))
    size = np.broadcast_to(np.asarray(size, dtype=float), (n,)) if len(size) else size
    slip = [slip_rate(base[i], slip_vol_factor, h[i], lo[i], c[i]) for i in range(n)]
    for i in range(n):
        sim.cap_left = max_volume_share * v[i] if max_volume_share < INF else INF
        if fill_code == enums.FILL_NEXT_OPEN and i > 0:
            if mode == enums.MODE_TARGET:
                sim.on_target(i, target[i - 1], o[i], slip[i], i)
            else:
                sim.on_signals(i, o[i], le[i - 1], lx[i - 1], se[i - 1], sx[i - 1], size[i - 1], slip[i], i)
        sim.on_stops(i, o[i], h[i], lo[i], slip[i])
        if fill_code == enums.FILL_CLOSE:
            if mode == enums.MODE_TARGET:
                sim.on_target(i, target[i], c[i], slip[i], i + 1)
            else:
                sim.on_signals(i, c[i], le[i], lx[i], se[i], sx[i], size[i], slip[i], i + 1)
        equity[i] = sim.cash + sim.pos * c[i]
        cash[i] = sim.cash
        pos[i] = sim.pos
    if sim.pos != 0.0:
        sim.record(n - 1, enums.EXIT_END_OF_DATA, c[n - 1])
    return {
        "equity": equity,
        "cash": cash,
        "position": pos,
        "trades": np.array(sim.records, dtype=np.float64).reshape(-1, enums.N_TRADE_FIELDS),
        "final_equity": sim.cash + sim.pos * c[n - 1],
        "fees": sim.fees,
        "slippage": sim.slippage,
        "traded": sim.traded,
        "n_fills": sim.n_fills,
        **{f"rejected_{k}" if k != "capped_fills" else k: v for k, v in sim.rejected.items()},
    }
