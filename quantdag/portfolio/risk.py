"""Portfolio risk rules: one implementation for the portfolio backtest and the paper account.

Two kinds of rule, both numba functions on plain arrays so the backtest kernel calls them on every
candle and the paper path calls the very same code once per cycle:

- **Limits on target weights** (:func:`limit_weights`), applied before every rebalance: per-asset
  cap, a cap on same-direction exposure to correlated assets, historical expected shortfall, net and
  gross exposure. They only ever shrink targets (scale toward zero), never add risk.
- **The state machine** (:func:`update_state`), fed the equity marked at each close (open P&L
  included, so a losing position that is never closed still counts): ACTIVE → REDUCING on the daily
  loss limit (only reductions until the next UTC day), any state → HALTED on the drawdown limit
  (positions flattened, or frozen, until the resume policy lets go: ``manual``, ``candles`` after N
  candles, ``recovery`` once drawdown is back under a threshold — which needs frozen positions).

Weights are fractions of portfolio value; a NaN parameter turns its rule off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numba import njit

from quantdag.errors import ConfigurationError

ACTIVE, REDUCING, HALTED = 0, 1, 2
STATE_NAMES = ("active", "reducing", "halted")

# parameter vector layout (float64; NaN = rule off)
(P_MAX_GROSS, P_MAX_NET, P_MAX_ASSET, P_MAX_CORRELATED, P_CORR_THRESHOLD, P_WINDOW, P_MAX_DRAWDOWN, P_DAILY_LOSS,
 P_MAX_ES, P_ES_LEVEL, P_MAX_ORDERS, P_RESUME, P_RESUME_AFTER, P_RESUME_DRAWDOWN, P_HALT_ACTION, N_PARAMS) = range(16)  # fmt: skip
# state vector layout
S_STATE, S_PEAK, S_DAY, S_DAY_START, S_HALTED_AT, S_CANDLES, S_LAST, N_STATE = range(8)
# event codes (what tripped or resumed)
EV_DRAWDOWN, EV_DAILY_LOSS, EV_MANUAL_HALT, EV_NEW_DAY, EV_RESUME_CANDLES, EV_RESUME_RECOVERY, EV_MANUAL_RESUME = range(1, 8)
EVENT_RULES = {EV_DRAWDOWN: "max_drawdown", EV_DAILY_LOSS: "daily_loss", EV_MANUAL_HALT: "manual",
               EV_NEW_DAY: "daily_loss", EV_RESUME_CANDLES: "resume_after_candles",
               EV_RESUME_RECOVERY: "resume_on_recovery", EV_MANUAL_RESUME: "manual"}  # fmt: skip
RESUME_POLICIES = ("manual", "candles", "recovery")
HALT_ACTIONS = ("flatten", "freeze")
MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class RiskRules:
    """Limits as fractions of portfolio value; ``None`` turns a rule off.

    ``window`` candles of closes feed the correlation and expected-shortfall rules; ``max_orders``
    caps the orders of one rebalance (the rest wait for the next candle).
    """

    max_gross: float | None = None
    max_net: float | None = None
    max_asset: float | None = None
    max_correlated: float | None = None
    corr_threshold: float = 0.7
    window: int = 720
    max_drawdown: float | None = None
    daily_loss: float | None = None
    max_es: float | None = None
    es_level: float = 0.95
    max_orders: int | None = None
    resume: Literal["manual", "candles", "recovery"] = "manual"
    resume_after: int = 24
    resume_drawdown: float = 0.0
    halt_action: Literal["flatten", "freeze"] = "flatten"

    def __post_init__(self) -> None:
        for name in ("max_gross", "max_net", "max_asset", "max_correlated", "max_es"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ConfigurationError(f"risk rule {name} must be > 0 or None, got {v!r}")
        for name in ("max_drawdown", "daily_loss"):
            v = getattr(self, name)
            if v is not None and not 0 < v < 1:
                raise ConfigurationError(f"risk rule {name} must be in (0, 1) or None, got {v!r}")
        if not -1 <= self.corr_threshold <= 1:
            raise ConfigurationError(f"risk rule corr_threshold must be in [-1, 1], got {self.corr_threshold!r}")
        if not 0.5 <= self.es_level < 1:
            raise ConfigurationError(f"risk rule es_level must be in [0.5, 1), got {self.es_level!r}")
        if self.window < 2:
            raise ConfigurationError(f"risk rule window must be >= 2 candles, got {self.window!r}")
        if self.max_orders is not None and self.max_orders < 1:
            raise ConfigurationError(f"risk rule max_orders must be >= 1 or None, got {self.max_orders!r}")
        if self.resume not in RESUME_POLICIES:
            raise ConfigurationError(f"risk resume policy must be one of {RESUME_POLICIES}, got {self.resume!r}")
        if self.halt_action not in HALT_ACTIONS:
            raise ConfigurationError(f"risk halt_action must be one of {HALT_ACTIONS}, got {self.halt_action!r}")
        if self.resume_after < 1:
            raise ConfigurationError(f"risk resume_after must be >= 1 candle, got {self.resume_after!r}")
        if self.resume == "recovery":
            if self.halt_action != "freeze":
                raise ConfigurationError("risk resume policy 'recovery' needs halt_action 'freeze' "
                                         "(flat positions cannot recover a drawdown)")  # fmt: skip
            if self.max_drawdown is None or not 0 <= self.resume_drawdown < self.max_drawdown:
                raise ConfigurationError(f"risk resume_drawdown must be in [0, max_drawdown), got {self.resume_drawdown!r}")

    @property
    def needs_history(self) -> bool:
        """Whether a rule reads trailing returns (correlation, expected shortfall)."""
        return self.max_correlated is not None or self.max_es is not None

    def params(self) -> np.ndarray:
        """The numba parameter vector (NaN = off)."""
        p = np.full(N_PARAMS, np.nan)
        for idx, v in ((P_MAX_GROSS, self.max_gross), (P_MAX_NET, self.max_net), (P_MAX_ASSET, self.max_asset),
                       (P_MAX_CORRELATED, self.max_correlated), (P_MAX_DRAWDOWN, self.max_drawdown),
                       (P_DAILY_LOSS, self.daily_loss), (P_MAX_ES, self.max_es), (P_MAX_ORDERS, self.max_orders)):  # fmt: skip
            if v is not None:
                p[idx] = float(v)
        p[P_CORR_THRESHOLD], p[P_WINDOW], p[P_ES_LEVEL] = self.corr_threshold, self.window, self.es_level
        p[P_RESUME] = RESUME_POLICIES.index(self.resume)
        p[P_RESUME_AFTER], p[P_RESUME_DRAWDOWN] = self.resume_after, self.resume_drawdown
        p[P_HALT_ACTION] = HALT_ACTIONS.index(self.halt_action)
        return p


def new_state(equity: float, ts_ms: int) -> np.ndarray:
    """A fresh ACTIVE state whose peak and day start are ``equity``."""
    st = np.zeros(N_STATE)
    st[S_STATE], st[S_PEAK], st[S_DAY], st[S_DAY_START], st[S_HALTED_AT] = ACTIVE, equity, ts_ms // MS_PER_DAY, equity, -1
    st[S_LAST] = equity
    return st


def event_reason(code: int, risk: RiskRules) -> str:
    """Words for an event code, with the limit that tripped."""
    return {
        EV_DRAWDOWN: f"drawdown from the equity peak reached {risk.max_drawdown:.2%}" if risk.max_drawdown else "drawdown",
        EV_DAILY_LOSS: f"loss since the UTC day began reached {risk.daily_loss:.2%}" if risk.daily_loss else "daily loss",
        EV_NEW_DAY: "a new UTC day began",
        EV_RESUME_CANDLES: f"{risk.resume_after} candles after the halt",
        EV_RESUME_RECOVERY: f"drawdown back under {risk.resume_drawdown:.2%}",
    }.get(code, EVENT_RULES.get(code, "?"))


@njit(cache=True)
def update_state(st: np.ndarray, p: np.ndarray, equity: float, ts_ms: int) -> tuple[int, int]:
    """Feed the equity marked at a close; returns up to two event codes (0 = none): a new UTC day
    releasing REDUCING, then a trip or a resume. Mutates ``st``."""
    first = 0
    st[S_CANDLES] += 1.0
    day = float(ts_ms // MS_PER_DAY)
    prev = st[S_LAST] if st[S_LAST] > 0 else equity
    st[S_LAST] = equity
    if st[S_DAY] != day:
        st[S_DAY] = day
        st[S_DAY_START] = prev  # the day began at the previous mark: its first candle's loss counts
        if st[S_STATE] == REDUCING:
            st[S_STATE] = ACTIVE
            first = EV_NEW_DAY
    if equity > st[S_PEAK]:
        st[S_PEAK] = equity
    dd = (st[S_PEAK] - equity) / st[S_PEAK] if st[S_PEAK] > 0 else 0.0
    if st[S_STATE] == HALTED:
        policy = int(p[P_RESUME])
        if policy == 1 and st[S_CANDLES] - st[S_HALTED_AT] >= p[P_RESUME_AFTER]:
            st[S_STATE] = ACTIVE
            st[S_PEAK] = equity  # re-armed from here, or it would trip again on the same drawdown
            st[S_DAY_START] = equity
            return first, EV_RESUME_CANDLES
        if policy == 2 and dd <= p[P_RESUME_DRAWDOWN]:
            st[S_STATE] = ACTIVE
            return first, EV_RESUME_RECOVERY
        return first, 0
    if not np.isnan(p[P_MAX_DRAWDOWN]) and dd >= p[P_MAX_DRAWDOWN]:
        st[S_STATE] = HALTED
        st[S_HALTED_AT] = st[S_CANDLES]
        return first, EV_DRAWDOWN
    if (st[S_STATE] == ACTIVE and not np.isnan(p[P_DAILY_LOSS]) and st[S_DAY_START] > 0
            and (st[S_DAY_START] - equity) / st[S_DAY_START] >= p[P_DAILY_LOSS]):  # fmt: skip
        st[S_STATE] = REDUCING
        return first, EV_DAILY_LOSS
    return first, 0


@njit(cache=True)
def limit_weights(target: np.ndarray, current: np.ndarray, tradable: np.ndarray, state: int, p: np.ndarray,
                  returns: np.ndarray) -> tuple[np.ndarray, int]:  # fmt: skip
    """Target weights after the state and the limits; and how many limits changed them.

    ``current``: weights held now; ``tradable``: markets that can trade now (others keep
    ``current``); ``returns``: trailing simple returns (window × markets, NaN-free rows), or an
    empty array when no rule needs them.
    """
    m = target.shape[0]
    w = target.copy()
    for i in range(m):
        if not tradable[i]:
            w[i] = current[i]
    if state == HALTED:
        for i in range(m):
            if tradable[i]:
                w[i] = 0.0 if p[P_HALT_ACTION] == 0 else current[i]
        return w, 0
    if state == REDUCING:
        for i in range(m):
            if current[i] == 0.0 or w[i] * current[i] < 0:
                w[i] = 0.0
            elif abs(w[i]) > abs(current[i]):
                w[i] = current[i]
    hits = 0
    if not np.isnan(p[P_MAX_ASSET]):
        cap = p[P_MAX_ASSET]
        hit = False
        for i in range(m):
            if tradable[i] and abs(w[i]) > cap:
                w[i] = cap if w[i] > 0 else -cap
                hit = True
        hits += hit
    k = returns.shape[0]
    if k >= 2 and not np.isnan(p[P_MAX_CORRELATED]):
        hits += _cap_correlated(w, tradable, np.corrcoef(returns.T), p[P_CORR_THRESHOLD], p[P_MAX_CORRELATED])
    if k >= 2 and not np.isnan(p[P_MAX_ES]):
        es = expected_shortfall(returns, w, p[P_ES_LEVEL])
        if es > p[P_MAX_ES]:
            _scale_tradable(w, tradable, p[P_MAX_ES] / es)
            hits += 1
    if not np.isnan(p[P_MAX_NET]):
        net = 0.0
        for i in range(m):
            net += w[i]
        if abs(net) > p[P_MAX_NET]:
            # shrink the side that makes the net too big until it is at the cap
            side = 1.0 if net > 0 else -1.0
            big = 0.0
            for i in range(m):
                if tradable[i] and w[i] * side > 0:
                    big += w[i]
            excess = abs(net) - p[P_MAX_NET]
            if big != 0.0:
                f = max(0.0, 1.0 - excess / abs(big))
                for i in range(m):
                    if tradable[i] and w[i] * side > 0:
                        w[i] *= f
            hits += 1
    if not np.isnan(p[P_MAX_GROSS]):
        gross = 0.0
        fixed = 0.0
        for i in range(m):
            gross += abs(w[i])
            if not tradable[i]:
                fixed += abs(w[i])
        if gross > p[P_MAX_GROSS]:
            free = gross - fixed
            if free > 0:
                _scale_tradable(w, tradable, max(0.0, (p[P_MAX_GROSS] - fixed) / free))
            hits += 1
    return w, hits


@njit(cache=True)
def _scale_tradable(w, tradable, f):
    for i in range(w.shape[0]):
        if tradable[i]:
            w[i] *= f


@njit(cache=True)
def _cap_correlated(w, tradable, corr, threshold, cap) -> int:
    """Scale each group of same-direction assets correlated above ``threshold`` with an asset
    down to ``cap`` of gross exposure, largest group first; 1 if anything changed."""
    m = w.shape[0]
    changed = 0
    for _ in range(m):
        worst, worst_i = cap, -1
        for i in range(m):
            if w[i] == 0.0:
                continue
            g = 0.0
            for j in range(m):
                if w[j] * w[i] > 0 and (i == j or corr[i, j] >= threshold):
                    g += abs(w[j])
            if g > worst + 1e-12:
                worst, worst_i = g, i
        if worst_i < 0:
            break
        free, fixed = 0.0, 0.0
        for j in range(m):
            if w[j] * w[worst_i] > 0 and (j == worst_i or corr[worst_i, j] >= threshold):
                if tradable[j]:
                    free += abs(w[j])
                else:
                    fixed += abs(w[j])
        if free <= 0:
            break
        f = max(0.0, (cap - fixed) / free)
        sgn = w[worst_i]
        for j in range(m):
            if tradable[j] and w[j] * sgn > 0 and (j == worst_i or corr[worst_i, j] >= threshold):
                w[j] *= f
        changed = 1
    return changed


@njit(cache=True)
def expected_shortfall(returns: np.ndarray, w: np.ndarray, level: float) -> float:
    """Historical expected shortfall (a positive loss fraction) of holding ``w`` over ``returns``:
    the mean of the worst ``1 - level`` share of the window's portfolio returns."""
    k = returns.shape[0]
    r = returns @ w
    r.sort()
    tail = max(1, int(math.floor(k * (1.0 - level) + 1e-9)))  # 100 x (1 - 0.9) is 9.999...
    s = 0.0
    for j in range(tail):
        s += r[j]
    return max(0.0, -s / tail)


def trailing_returns(close: np.ndarray, t: int, window: int) -> np.ndarray:
    """Simple returns of ``close`` (candles × markets) over the ``window`` candles ending at row
    ``t`` inclusive, rows with a missing close dropped; empty when fewer than two remain."""
    return _trailing_returns(close, t, window)


@njit(cache=True)
def _trailing_returns(close, t, window):
    lo = max(1, t - window + 1)
    m = close.shape[1]
    out = np.empty((max(0, t - lo + 1), m))
    k = 0
    for r in range(lo, t + 1):
        ok = True
        for i in range(m):
            a, b = close[r - 1, i], close[r, i]
            if np.isnan(a) or np.isnan(b) or a <= 0:
                ok = False
                break
        if ok:
            for i in range(m):
                out[k, i] = close[r, i] / close[r - 1, i] - 1.0
            k += 1
    if k < 2:
        return np.empty((0, m))
    return out[:k]
