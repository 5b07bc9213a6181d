"""Pure chart and figure code: snapshots in, numbers and plotly figures (as JSON) out. No Reflex, no I/O.

Times are epoch milliseconds (UTC) throughout; the browser turns them into the viewer's local time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import plotly.graph_objects as go

from projectalgo.clock import DAY_MS, HOUR_MS

RANGES = {"24H": DAY_MS, "7D": 7 * DAY_MS, "30D": 30 * DAY_MS, "1Y": 365 * DAY_MS, "All": None}
DEFAULT_RANGE = "24H"
ALL = "All"  # the range that starts at the oldest stored snapshot


def range_key(chosen: object) -> str:
    """The range a page asked for (whatever the browser sent), or the default one."""
    return chosen if isinstance(chosen, str) and chosen in RANGES else DEFAULT_RANGE


# Per trace: more is invisible on a screen and slow to draw, and each point costs the page ~25 bytes (a day of
# 1-minute snapshots drawn whole made the strategy page ~400 KB, bench/analytics.py).
MAX_POINTS = 800
DRAWN_DIGITS = 8  # significant digits a chart's values are sent with: finer than any screen shows
# How often an open page brings its statuses and "x minutes ago" up to date (one event per tab).
TICK_MS = 60_000


def combined_equity(wallet_by_account: Mapping[int, Decimal]) -> Decimal:
    """Each brokerage account counts once, however many strategies report for it."""
    return sum(wallet_by_account.values(), Decimal(0))


def equity_series(
    readings: Mapping[int, Sequence[tuple[int, Decimal]]],
    before_start: Mapping[int, Decimal],
    start_ms: int,
    end_ms: int,
    bucket_ms: int = HOUR_MS,
) -> list[tuple[int, Decimal]]:
    """Combined wallet balance per bucket (an hour by default) from start_ms to end_ms: each account's last
    reading in the bucket, carried forward into buckets without one.

    `readings` holds each account's (at_ms, wallet) in the window, oldest first; `before_start` each
    account's last wallet before the window. An account with nothing yet contributes nothing to an
    hour: it is never filled with a value from its future.
    """
    first_bucket = start_ms - start_ms % bucket_ms
    carried = dict(before_start)
    cursors = dict.fromkeys(readings, 0)
    series: list[tuple[int, Decimal]] = []
    for bucket in range(first_bucket, end_ms, bucket_ms):
        for account, account_readings in readings.items():
            i = cursors[account]
            while i < len(account_readings) and account_readings[i][0] < bucket + bucket_ms:
                carried[account] = account_readings[i][1]
                i += 1
            cursors[account] = i
        if carried:
            series.append((bucket, combined_equity(carried)))
    return series


def equity_at_start(
    readings: Mapping[int, Sequence[tuple[int, Decimal]]], before_start: Mapping[int, Decimal]
) -> Decimal:
    """The combined balance a window's PnL is measured from: each account's value at the start, or, for
    an account that first reported during the window, its first report (so a new account is not profit)."""
    start = dict(before_start)
    for account, account_readings in readings.items():
        if account not in start and account_readings:
            start[account] = account_readings[0][1]
    return combined_equity(start)


def running_peaks(values: Sequence[float], moved: Sequence[float]) -> list[float]:
    """The running peak at each value, net of money moved: the amount moved in (or, negative, out) at a point
    moves the peak by as much, so a deposit is no new high and a withdrawal no fall."""
    peaks: list[float] = []
    for value, flow in zip(values, moved, strict=True):
        peaks.append(value if not peaks else max(peaks[-1] + flow, value))
    return peaks


def drawdown(values: Sequence[float], moved: Sequence[float]) -> list[float]:
    """Drawdown from the running peak net of money moved, as a fraction (0 at a new peak, -0.25 a quarter below)."""
    return [
        value / peak - 1 if peak > 0 else 0.0 for value, peak in zip(values, running_peaks(values, moved), strict=True)
    ]


def drawn_value(value: float) -> float:
    """A value as charts are sent it, figures and live tails alike: DRAWN_DIGITS significant digits (the tables
    show the exact amounts)."""
    return float(f"{value:.{DRAWN_DIGITS}g}")


def drawn(points: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    """What a chart draws of a series: at most MAX_POINTS (`downsample`), each value a `drawn_value`."""
    return [(at, drawn_value(value)) for at, value in downsample(points)]


def downsample(points: Sequence[tuple[int, float]], max_points: int = MAX_POINTS) -> list[tuple[int, float]]:
    """At most `max_points`, keeping each bucket's first, last, lowest and highest point (in time order),
    so peaks, troughs and the ends survive."""
    if len(points) <= max_points:
        return list(points)
    buckets = max(1, max_points // 4)
    size = len(points) / buckets
    kept: list[tuple[int, float]] = []
    for b in range(buckets):
        chunk = points[int(b * size) : int((b + 1) * size)]
        if not chunk:
            continue
        chosen = {
            0,
            len(chunk) - 1,
            min(range(len(chunk)), key=lambda i: chunk[i][1]),
            max(range(len(chunk)), key=lambda i: chunk[i][1]),
        }
        kept.extend(chunk[i] for i in sorted(chosen))
    return kept


@dataclass(frozen=True)
class Point:
    """One moment of a strategy, as its charts draw it."""

    at_ms: int
    wallet: float
    margin: float
    realised_pnl: float
    last_price: float
    average_entry_price: float
    positions: float

    @property
    def unrealised_pnl(self) -> float:
        return self.margin - self.wallet


# The strategy figure: five stacked panels sharing the time axis. Trace order is the tail's contract.
STRATEGY_TRACES = (
    ("Wallet balance", "wallet", 1),
    ("Margin balance", "margin", 1),
    ("Unrealised PnL", "unrealised_pnl", 2),
    ("Realised PnL", "realised_pnl", 2),
    ("Last price", "last_price", 3),
    ("Average entry", "average_entry_price", 3),
    ("Position", "positions", 4),
    ("Drawdown", "drawdown", 5),
)
PANELS = ("Balance (USD)", "PnL (USD)", "Price", "Position", "Drawdown")

# Figures follow the page's light or dark mode: transparent backgrounds (assets/live_chart.jsx takes the page's
# text colour) and grid lines of a grey that reads on both, where plotly's own are white.
GRID_COLOR = "rgba(128, 128, 128, 0.2)"
ZERO_LINE_COLOR = "rgba(128, 128, 128, 0.45)"
MONEY_TICKS = "$,.2~f"  # "$9,975" or "-$12.5", never "9.9755k"
MONEY_HOVER = "$,.2f"
PLAIN_TICKS = {"exponentformat": "none", "separatethousands": True}  # 9,321.5 and 0.00012, never "9.3215k"
# A trace of at most this many points draws its points too: one snapshot is a dot, a few are visibly a few.
FEW_POINTS = 60
# The time axis spans at least this much (the chart widens it around the newest point): a first snapshot gets
# an axis of minutes, not of milliseconds.
MIN_X_SPAN_MS = 10 * 60_000
# A legend under the plot, in rows as wide as the screen (on a phone one beside or over it hides the lines), and
# one hover box for every line at the cursor's time.
LEGEND_BELOW = {
    "showlegend": True,
    "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": 0, "yanchor": "bottom", "yref": "container"},
    "hovermode": "x unified",
}
MODEBAR = {"bgcolor": "rgba(0, 0, 0, 0)", "color": "rgba(128, 128, 128, 0.7)", "activecolor": "rgb(128, 128, 128)"}


def _axis(**settings: object) -> dict[str, object]:
    return {"gridcolor": GRID_COLOR, "zerolinecolor": ZERO_LINE_COLOR, "automargin": True, **settings}


def _panel_ticks(title: str) -> dict[str, object]:
    if title == "Drawdown":
        return {"tickformat": ".1%", "hoverformat": ".2%"}
    if title.endswith("(USD)"):
        return {"tickformat": MONEY_TICKS, "hoverformat": MONEY_HOVER}
    return PLAIN_TICKS


def _mode(points: int) -> str:
    return "lines+markers" if points <= FEW_POINTS else "lines"


def _axis_layout(panels: Sequence[str]) -> dict[str, object]:
    layout: dict[str, object] = {}
    gap = 0.04
    height = (1 - gap * (len(panels) - 1)) / len(panels)
    for n, title in enumerate(panels, start=1):
        top = 1 - (n - 1) * (height + gap)
        suffix = "" if n == 1 else str(n)
        layout[f"yaxis{suffix}"] = _axis(domain=[top - height, top], title={"text": title}, **_panel_ticks(title))
        layout[f"xaxis{suffix}"] = _axis(
            type="date", anchor=f"y{suffix}", showticklabels=n == len(panels), **({} if n == 1 else {"matches": "x"})
        )
    return layout


def _figure(traces: Sequence[go.Scatter | go.Bar], layout: dict[str, object], seq: int) -> dict[str, object]:
    """The figure as plain JSON for the live chart (assets/live_chart.jsx), with the live sequence it is current
    up to. Built through plotly.graph_objects, so a misspelt or invalid property fails here instead of being
    ignored by plotly.js. Building checks every point: ~40 ms for a full strategy figure, so pages build figures
    off the event loop. Plotly's default template is left out: the page's light or dark mode styles the chart."""
    figure = go.Figure(data=traces, layout=go.Layout(template=go.layout.Template(), **layout)).to_plotly_json()
    figure["layout"].pop("template")
    return {**figure, "seq": seq, "min_x_span": MIN_X_SPAN_MS}


def strategy_figure(points: Sequence[Point], seq: int, moved: Mapping[int, float] | None = None) -> dict[str, object]:
    """Every panel of a strategy page; `seq` is the live sequence the figure is current up to; `moved`, the money
    moved in or out at each point (by its at_ms), which the drawdown panel is net of."""
    dd = drawdown([p.margin for p in points], [(moved or {}).get(p.at_ms, 0.0) for p in points])
    data = []
    for name, field, panel in STRATEGY_TRACES:
        ys = dd if field == "drawdown" else [getattr(p, field) for p in points]
        suffix = "" if panel == 1 else str(panel)
        series = drawn(list(zip((p.at_ms for p in points), ys, strict=True)))
        data.append(
            go.Scatter(
                mode=_mode(len(series)),
                marker={"size": 5},
                name=name,
                xaxis=f"x{suffix}",
                yaxis=f"y{suffix}",
                x=[x for x, _ in series],
                y=[y for _, y in series],
                line={"shape": "hv"} if field in ("positions", "average_entry_price") else None,
            )
        )
    layout = {
        "height": 900,
        "margin": {"l": 60, "r": 20, "t": 10, "b": 40},
        **LEGEND_BELOW,
        "modebar": MODEBAR,
        **_axis_layout(PANELS),
    }
    return _figure(data, layout, seq)


def strategy_tail(point: Point, peak_margin: float, seq: int) -> dict[str, object]:
    """The new point of every trace, in STRATEGY_TRACES order, for a live update."""
    dd = point.margin / peak_margin - 1 if peak_margin > 0 else 0.0
    ys = [dd if field == "drawdown" else getattr(point, field) for _, field, _ in STRATEGY_TRACES]
    return {"seq": seq, "points": [[i, point.at_ms, drawn_value(y)] for i, y in enumerate(ys)]}


def equity_figure(series: Sequence[tuple[int, Decimal]], seq: int, title: str) -> dict[str, object]:
    points = drawn([(at, float(v)) for at, v in series])
    trace = go.Scatter(
        mode=_mode(len(points)),
        marker={"size": 6},
        name="Wallet balance",
        line={"shape": "hv"},
        x=[x for x, _ in points],
        y=[y for _, y in points],
    )
    layout = {
        "height": 320,
        "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
        # At the left: the modebar takes the top right corner.
        "title": {"text": title, "x": 0.02, "xanchor": "left", "xref": "container", "font": {"size": 15}},
        "xaxis": _axis(type="date"),
        "yaxis": _axis(tickformat=MONEY_TICKS, hoverformat=MONEY_HOVER),
        "modebar": MODEBAR,
    }
    return _figure([trace], layout, seq)


def equity_tail(bucket_ms: int, equity: Decimal, seq: int) -> dict[str, object]:
    """The current bucket's combined balance: the chart replaces its last point if the bucket is the same."""
    return {"seq": seq, "points": [[0, bucket_ms, drawn_value(float(equity))]]}


def iso_time(ms: int) -> str:
    """ISO 8601 UTC, for the browser to show in the viewer's time zone."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def money(value: Decimal | float | None) -> str:
    if value is None:
        return "—"
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def _daily_bars(
    days: Sequence[tuple[str, float]], name: str, hover: str, tickformat: str, hoverformat: str
) -> dict[str, object]:
    """A bar per day (its date, YYYY-MM-DD): green up, red down."""
    bars = go.Bar(
        name=name,
        x=[day for day, _ in days],
        y=[value for _, value in days],
        marker={"color": ["rgb(48, 164, 108)" if value >= 0 else "rgb(229, 72, 77)" for _, value in days]},
        hovertemplate=f"%{{x}}: %{{y:{hover}}}<extra></extra>",
    )
    layout = {
        "height": 260,
        "margin": {"l": 60, "r": 20, "t": 10, "b": 40},
        "xaxis": _axis(type="date", tickformat="%b %d"),
        "yaxis": _axis(tickformat=tickformat, hoverformat=hoverformat),
        "modebar": MODEBAR,
        "bargap": 0.2,
    }
    return _figure([bars], layout, 0)


def daily_pnl_figure(days: Sequence[tuple[str, float]]) -> dict[str, object]:
    """Each day's PnL net of flows."""
    return _daily_bars(days, "Daily PnL", "$,.2f", MONEY_TICKS, MONEY_HOVER)


def daily_returns_figure(days: Sequence[tuple[str, float]]) -> dict[str, object]:
    """Each day's return net of flows (0.01 = +1 %): a daily PnL chart without amounts."""
    return _daily_bars(days, "Daily return", "+.2%", ".1%", ".2%")


def returns_figure(
    strategy: Sequence[tuple[int, float]], hold: Sequence[tuple[int, float]], symbol: str
) -> dict[str, object]:
    """The strategy's time-weighted return beside holding its symbol over the same range (0.05 = +5 %)."""
    traces = []
    for name, series in (("Strategy (net of flows)", strategy), (f"Holding {symbol or 'the symbol'}", hold)):
        points = drawn(list(series))
        traces.append(
            go.Scatter(
                mode=_mode(len(points)),
                marker={"size": 5},
                name=name,
                x=[x for x, _ in points],
                y=[y for _, y in points],
            )
        )
    layout = {
        "height": 300,
        "margin": {"l": 60, "r": 20, "t": 10, "b": 40},
        **LEGEND_BELOW,
        "xaxis": _axis(type="date"),
        "yaxis": _axis(tickformat=".1%", hoverformat=".2%"),
        "modebar": MODEBAR,
    }
    return _figure(traces, layout, 0)
