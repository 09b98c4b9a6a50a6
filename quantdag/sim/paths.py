"""Generation of the 1-minute base path, one UTC day block at a time.

Each series (the common crypto factor and every market) draws its random numbers for day ``d``
from a generator seeded by ``(seed, series name, d)`` with ``d`` counted from the epoch, so a day's
innovations never depend on which days were generated before it or in what order. What does carry
over from one day to the next is the small :data:`GenState` (log price, last close, GARCH variance,
volatility regime, basis): generating days ``[a, b)`` and then ``[b, c)`` gives exactly the arrays
of generating ``[a, c)`` at once. The recursions run in numba; everything else is vectorised.

See :mod:`quantdag.sim.model` for the model itself.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
from numba import njit

from quantdag.sim.markets import SimMarket

MINUTES_PER_DAY = 1440
MS_PER_MINUTE = 60_000
MS_PER_DAY = 86_400_000

#: Columns of a generated 1-minute block (all int64: ticks, lot steps or counts).
BASE_COLUMNS = ("open", "high", "low", "close", "volume", "trades", "taker_base")

_DF = 5.0  # Student-t degrees of freedom of every innovation
_T_SCALE = math.sqrt((_DF - 2.0) / _DF)  # makes the t draws unit-variance
_Z_CLIP = 10.0
_GARCH_ALPHA, _GARCH_BETA = 0.06, 0.93
_REGIME_PHI, _REGIME_SD = 0.97, 0.35  # daily AR(1) of log volatility
_FACTOR_DAILY_VOL = 0.03
_FACTOR_JUMPS_PER_DAY, _FACTOR_JUMP_SIZE = 0.15, 0.008
_STABLE_KAPPA, _STABLE_SIGMA = 0.15, 5e-5  # per minute: tight peg, sd of log price ~1e-4
_BASIS_KAPPA, _BASIS_SIGMA = 0.05, 2e-5
DEPEG_ERA_DAYS = 180  # one depeg episode per epoch-aligned era of this many days

_HOUR = (np.arange(MINUTES_PER_DAY) + 0.5) / 60.0
#: Intraday volume profile (mean 1): busiest around 15:00 UTC, quietest around 03:00 UTC.
INTRADAY_VOLUME = 1.0 + 0.35 * np.cos(2.0 * np.pi * (_HOUR - 15.0) / 24.0)
_INTRADAY_VOL = np.sqrt(INTRADAY_VOLUME)
_WEEKEND_VOLUME, _WEEKDAY_VOLUME = 0.70, 1.12  # 5 * 1.12 + 2 * 0.70 = 7
_WEEKEND_VOL, _WEEKDAY_VOL = 0.85, 1.06

#: Carried state: series name -> scalar fields.
GenState = dict[str, dict[str, float]]


def series_rng(seed: int, name: str, index: int) -> np.random.Generator:
    """Generator for one (series, block) pair; independent of every other pair."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), index])


def is_weekend(day: int | np.ndarray) -> bool | np.ndarray:
    """Epoch day 0 (1970-01-01) was a Thursday."""
    return (np.asarray(day) + 3) % 7 >= 5


@njit(cache=True)
def _garch(z: np.ndarray, h0: float, e0: float, alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit-variance GARCH(1,1) innovations ``eps`` and their conditional variances ``h``."""
    n = z.size
    eps = np.empty(n)
    h = np.empty(n)
    omega = 1.0 - alpha - beta
    h_prev, e_prev = h0, e0
    for t in range(n):
        ht = omega + alpha * e_prev * e_prev + beta * h_prev
        et = math.sqrt(ht) * z[t]
        h[t] = ht
        eps[t] = et
        h_prev, e_prev = ht, et
    return eps, h


@njit(cache=True)
def _accumulate(x0: float, r: np.ndarray) -> np.ndarray:
    """Log prices ``x_t = x_{t-1} + r_t``, added one step at a time so chunking cannot change them."""
    x = np.empty(r.size)
    prev = x0
    for t in range(r.size):
        prev = prev + r[t]
        x[t] = prev
    return x


@njit(cache=True)
def _ou(x0: float, kappa: float, target: np.ndarray, shocks: np.ndarray) -> np.ndarray:
    """Discrete Ornstein-Uhlenbeck path pulled towards ``target``."""
    n = shocks.size
    x = np.empty(n)
    prev = x0
    for t in range(n):
        prev = prev + kappa * (target[t] - prev) + shocks[t]
        x[t] = prev
    return x


@dataclass(frozen=True)
class DepegEpisode:
    """A seeded stablecoin depeg: a fast drop to ``1 - depth`` then an exponential recovery."""

    symbol: str
    start_ms: int
    depth: float
    drop_minutes: int
    recovery_minutes: float

    @property
    def trough_ms(self) -> int:
        return self.start_ms + self.drop_minutes * MS_PER_MINUTE

    @property
    def end_ms(self) -> int:
        """When the deviation has shrunk below 1 basis point."""
        tail = self.recovery_minutes * math.log(self.depth / 1e-4)
        return self.trough_ms + int(tail) * MS_PER_MINUTE

    def deviation(self, t_ms: np.ndarray) -> np.ndarray:
        """Fractional price shortfall (>= 0) of the peg target at times ``t_ms``."""
        minutes = (np.asarray(t_ms, dtype=np.int64) - self.start_ms) / MS_PER_MINUTE
        out = np.zeros(minutes.shape)
        drop = (minutes >= 0) & (minutes < self.drop_minutes)
        out[drop] = self.depth * (minutes[drop] / self.drop_minutes) ** 0.7
        rec = minutes >= self.drop_minutes
        out[rec] = self.depth * np.exp(-(minutes[rec] - self.drop_minutes) / self.recovery_minutes)
        return out


def depeg_episode(seed: int, symbol: str, era: int) -> DepegEpisode:
    """The one depeg of ``symbol`` in era ``era`` (days ``[era * 180, era * 180 + 180)`` from the epoch)."""
    rng = series_rng(seed, "depeg:" + symbol, era)
    offset_min = int(rng.integers(0, (DEPEG_ERA_DAYS - 12) * MINUTES_PER_DAY))
    start = era * DEPEG_ERA_DAYS * MS_PER_DAY + offset_min * MS_PER_MINUTE
    return DepegEpisode(
        symbol=symbol,
        start_ms=start,
        depth=float(rng.uniform(0.02, 0.08)),
        drop_minutes=int(rng.integers(20, 121)),
        recovery_minutes=float(rng.uniform(360.0, 2160.0)),
    )


def depeg_episodes(seed: int, symbol: str, start_ms: int, end_ms: int) -> list[DepegEpisode]:
    """Episodes of ``symbol`` that overlap ``[start_ms, end_ms)``."""
    first_era = (start_ms - 12 * MS_PER_DAY) // (DEPEG_ERA_DAYS * MS_PER_DAY)
    last_era = end_ms // (DEPEG_ERA_DAYS * MS_PER_DAY)
    episodes = [depeg_episode(seed, symbol, era) for era in range(first_era, last_era + 1)]
    return [e for e in episodes if e.start_ms < end_ms and e.end_ms > start_ms]


def initial_state(markets: tuple[SimMarket, ...]) -> GenState:
    """State at genesis: start prices, unconditional GARCH variance, neutral regimes."""
    state: GenState = {"factor": {"h": 1.0, "eps": 0.0, "v": 0.0}}
    by_symbol = {m.symbol: m for m in markets}
    for spec in markets:
        if spec.kind == "cross":
            a, b = (by_symbol[leg] for leg in spec.legs or ())
            x = math.log(a.start_price) - math.log(b.start_price)
        else:
            x = math.log(spec.start_price)
        close = max(1, round(math.exp(x) * 10**spec.price_decimals))
        state[spec.symbol] = {"x": x, "close": float(close), "h": 1.0, "eps": 0.0, "v": 0.0, "basis": 0.0}
    return state


def _regime(eta: np.ndarray, v0: float) -> tuple[np.ndarray, float]:
    """Per-minute volatility multiplier from a daily AR(1) of log volatility, interpolated in-day."""
    v = np.empty(eta.size + 1)
    v[0] = v0
    shock = math.sqrt(1.0 - _REGIME_PHI**2) * _REGIME_SD
    for i in range(eta.size):
        v[i + 1] = _REGIME_PHI * v[i] + shock * eta[i]
    frac = (np.arange(MINUTES_PER_DAY) + 1.0) / MINUTES_PER_DAY
    path = v[:-1, None] + (v[1:] - v[:-1])[:, None] * frac[None, :]
    return np.exp(path - _REGIME_SD**2).ravel(), float(v[-1])


def generate(
    markets: tuple[SimMarket, ...],
    seed: int,
    first_day: int,
    n_days: int,
    state: GenState,
    out: dict[str, np.ndarray] | None = None,
) -> tuple[dict[str, np.ndarray], GenState]:
    """Generate ``n_days`` day blocks starting at epoch day ``first_day``.

    ``markets`` must list every cross market after its legs (see ``check_universe``). Returns, per
    symbol, a ``(len(BASE_COLUMNS), n_days * 1440)`` int64 array (written into ``out[symbol]`` when
    given, to spare a copy) and the state after the last minute.
    """
    n = n_days * MINUTES_PER_DAY
    days = np.arange(first_day, first_day + n_days)
    weekend = is_weekend(days)
    vol_season = (_INTRADAY_VOL[None, :] * np.where(weekend, _WEEKEND_VOL, _WEEKDAY_VOL)[:, None]).ravel()
    volume_season = (INTRADAY_VOLUME[None, :] * np.where(weekend, _WEEKEND_VOLUME, _WEEKDAY_VOLUME)[:, None]).ravel()
    new_state: GenState = {name: dict(fields) for name, fields in state.items()}

    # the common crypto factor
    z, _, _, eta, f_jumps = _draws(seed, "factor", days, _FACTOR_JUMPS_PER_DAY, _FACTOR_JUMP_SIZE, with_noise=False)
    fs = new_state["factor"]
    f_eps, f_h = _garch(z, fs["h"], fs["eps"], _GARCH_ALPHA, _GARCH_BETA)
    f_regime, fs["v"] = _regime(eta, fs["v"])
    fs["h"], fs["eps"] = float(f_h[-1]), float(f_eps[-1])
    f_scale = _FACTOR_DAILY_VOL / math.sqrt(MINUTES_PER_DAY) * vol_season * f_regime
    f_ret = f_scale * f_eps + f_jumps
    f_var = f_scale**2 * f_h

    t_ms = (first_day * MINUTES_PER_DAY + np.arange(n, dtype=np.int64)) * MS_PER_MINUTE
    paths: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # symbol -> (log price, minute variance)
    result: dict[str, np.ndarray] = {}
    for spec in markets:
        st = new_state[spec.symbol]
        jumps_per_day = spec.jumps_per_day if spec.kind == "crypto" else 0.0
        z, uu, nn, eta, jumps = _draws(seed, spec.symbol, days, jumps_per_day, spec.jump_size, with_noise=True)
        boost = np.empty(0)
        if spec.kind == "crypto":
            eps, h = _garch(z, st["h"], st["eps"], _GARCH_ALPHA, _GARCH_BETA)
            regime, st["v"] = _regime(eta, st["v"])
            st["h"], st["eps"] = float(h[-1]), float(eps[-1])
            sys_var = (spec.beta * _FACTOR_DAILY_VOL) ** 2
            idio_daily = math.sqrt(max(spec.daily_vol**2 - sys_var, (0.2 * spec.daily_vol) ** 2))
            i_scale = idio_daily / math.sqrt(MINUTES_PER_DAY) * vol_season * regime
            x = _accumulate(st["x"], spec.beta * f_ret + i_scale * eps + jumps)
            var = spec.beta**2 * f_var + i_scale**2 * h
        elif spec.kind == "stable":
            dev = np.zeros(n)
            for episode in depeg_episodes(seed, spec.symbol, int(t_ms[0]), int(t_ms[-1]) + MS_PER_MINUTE):
                dev += episode.deviation(t_ms)
            dev = np.minimum(dev, 0.5)
            sigma = _STABLE_SIGMA * vol_season * (1.0 + 200.0 * dev)
            x = _ou(st["x"], _STABLE_KAPPA, np.log1p(-dev), sigma * z)
            var = sigma**2
            boost = 1.0 + 300.0 * dev
        else:  # cross: numerator / denominator times a small mean-reverting basis
            (xa, va), (xb, vb) = (paths[leg] for leg in spec.legs or ())
            basis = _ou(st["basis"], _BASIS_KAPPA, np.zeros(n), _BASIS_SIGMA * z)
            st["basis"] = float(basis[-1])
            x = xa - xb + basis
            var = va + vb + _BASIS_SIGMA**2
        paths[spec.symbol] = (x, var)
        cols = out[spec.symbol] if out is not None else np.empty((len(BASE_COLUMNS), n), dtype=np.int64)
        _candle_kernel(
            x, var, uu[0], uu[1], nn[0], nn[1], nn[2], volume_season, boost,
            st["x"], int(st["close"]), 10.0**spec.price_decimals, 10.0**spec.qty_decimals,
            spec.daily_volume / MINUTES_PER_DAY, spec.avg_trade_size, spec.daily_vol / math.sqrt(MINUTES_PER_DAY),
            *cols,
        )
        st["x"], st["close"] = float(x[-1]), float(cols[3, -1])
        result[spec.symbol] = cols
    return result, new_state


def _draws(
    seed: int, name: str, days: np.ndarray, jumps_per_day: float, jump_size: float, *, with_noise: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-day random numbers of one series, concatenated over ``days``.

    Returns the Student-t innovations, two (0, 1] uniforms and three standard normals per minute
    (empty unless ``with_noise``), one regime shock per day and the (sparse) jump returns.
    """
    n_days = days.size
    z = np.empty((n_days, MINUTES_PER_DAY))
    uu = np.empty((2, n_days, MINUTES_PER_DAY) if with_noise else (2, 0, 0))
    nn = np.empty((3, n_days, MINUTES_PER_DAY) if with_noise else (3, 0, 0))
    eta = np.empty(n_days)
    jumps = np.zeros((n_days, MINUTES_PER_DAY))
    for i, day in enumerate(days):
        rng = series_rng(seed, name, int(day))
        z[i] = np.clip(rng.standard_t(_DF, MINUTES_PER_DAY) * _T_SCALE, -_Z_CLIP, _Z_CLIP)
        eta[i] = rng.standard_normal()
        k = int(rng.poisson(jumps_per_day))
        if k:
            jumps[i, rng.integers(0, MINUTES_PER_DAY, k)] = jump_size * rng.standard_normal(k)
        if with_noise:
            uu[:, i, :] = 1.0 - rng.random((2, MINUTES_PER_DAY))
            nn[:, i, :] = rng.standard_normal((3, MINUTES_PER_DAY))
    shape = (uu.shape[0], -1)
    return z.reshape(-1), uu.reshape(shape), nn.reshape(3, -1), eta, jumps.reshape(-1)


@njit(cache=True)
def _candle_kernel(
    x, var, u_hi, u_lo, n_vol, n_trades, n_taker, volume_season, boost,
    x0, close0, price_scale, qty_scale, mean_volume, trade_size, sd_ref,
    c_open, c_high, c_low, c_close, c_volume, c_trades, c_taker,
):  # pragma: no cover - compiled
    """One pass per minute: bridge extremes, ticks, volume, trades and taker share.

    The high and low are the extremes of a Brownian bridge between the two closes with the
    minute's variance (sampled exactly by inverting P(max > m) = exp(-2 (m - a)(m - b) / s^2)).
    """
    x_prev = x0
    prev_close = close0
    for t in range(x.size):
        xt = x[t]
        d = xt - x_prev
        s2 = var[t]
        close = max(1, round(math.exp(xt) * price_scale))
        hi = round(math.exp(0.5 * (x_prev + xt + math.sqrt(d * d - 2.0 * s2 * math.log(u_hi[t])))) * price_scale)
        lo = round(math.exp(0.5 * (x_prev + xt - math.sqrt(d * d - 2.0 * s2 * math.log(u_lo[t])))) * price_scale)
        sd = math.sqrt(s2)
        activity = boost[t] if boost.size > 0 else math.exp(0.8 * math.log(min(max(sd / sd_ref, 0.3), 8.0)))
        base_volume = mean_volume * volume_season[t] * activity * math.exp(0.45 * n_vol[t] - 0.10125)
        volume = max(1, round(base_volume * qty_scale))
        share = 0.5 + 0.2 * math.tanh(d / max(sd, 1e-12)) + 0.05 * n_taker[t]
        share = min(max(share, 0.02), 0.98)
        c_open[t] = prev_close
        c_high[t] = max(max(prev_close, close), hi)
        c_low[t] = max(1, min(min(prev_close, close), lo))
        c_close[t] = close
        c_volume[t] = volume
        c_trades[t] = max(1, round(base_volume / trade_size * math.exp(0.2 * n_trades[t])))
        c_taker[t] = round(volume * share)
        x_prev = xt
        prev_close = close
