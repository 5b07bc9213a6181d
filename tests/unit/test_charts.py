from decimal import Decimal

import pytest

from projectalgo import charts, clock

H = clock.HOUR_MS
D = Decimal


def test_combined_equity_counts_each_account_once():
    # Two strategies on account 1 (their newest report stands for it) and one on account 2.
    latest_by_account = {1: D("1234.56"), 2: D("500")}
    assert charts.combined_equity(latest_by_account) == D("1734.56")


def test_the_hourly_series_carries_values_forward_and_never_back():
    start, end = 10 * H, 15 * H
    readings = {
        1: [(10 * H + 5, D(100)), (10 * H + 50, D(110)), (13 * H + 1, D(130))],
        2: [(12 * H + 7, D(50))],  # account 2 only starts reporting in the third hour
    }
    series = charts.equity_series(readings, {}, start, end)
    assert series == [(10 * H, D(110)), (11 * H, D(110)), (12 * H, D(160)), (13 * H, D(180)), (14 * H, D(180))]


def test_a_value_from_before_the_window_is_carried_in():
    series = charts.equity_series({1: [(12 * H, D(120))]}, {1: D(90), 2: D(10)}, 10 * H, 13 * H)
    assert series == [(10 * H, D(100)), (11 * H, D(100)), (12 * H, D(130))]


def test_the_start_measures_new_accounts_from_their_first_report():
    readings = {1: [(11 * H, D(1100))], 2: [(12 * H, D(500)), (13 * H, D(550))]}
    start = charts.equity_at_start(readings, {1: D(1000)})
    assert start == D(1500)  # account 1 from before the window, account 2 from its first report


def test_drawdown_from_the_running_peak():
    assert charts.drawdown([100, 120, 90, 60, 130, 65], [0] * 6) == [0.0, 0.0, -0.25, -0.5, 0.0, -0.5]
    assert charts.drawdown([0, -5], [0, 0]) == [0.0, 0.0]


def test_money_moved_in_or_out_is_no_peak_and_no_fall():
    """100, then 50 withdrawn (50: no fall), a loss to 40 (-20 % of the peak moved down to 50), 200 deposited
    (240: the peak moves up to 250, so still 4 % below it), then 260 is a new high."""
    values, moved = [100, 50, 40, 240, 260], [0, -50, 0, 200, 0]
    assert charts.running_peaks(values, moved) == [100, 50, 50, 250, 260]
    assert charts.drawdown(values, moved) == pytest.approx([0.0, 0.0, -0.2, -0.04, 0.0])


def test_downsampling_keeps_the_ends_and_each_buckets_extremes():
    points = [(t, float((t * 37) % 101)) for t in range(10_000)]
    points[4321] = (4321, 1e6)
    points[7777] = (7777, -1e6)
    kept = charts.downsample(points, 2000)
    assert len(kept) <= 2000
    assert kept[0] == points[0] and kept[-1] == points[-1]
    assert (4321, 1e6) in kept and (7777, -1e6) in kept
    assert [t for t, _ in kept] == sorted(t for t, _ in kept)
    assert charts.downsample(points[:50], 2000) == points[:50]


def test_a_live_tail_extends_every_trace_as_the_figure_redrawn_with_the_new_point_would():
    points = [charts.Point(at, 100 + at, 110 + at, 5, 9000, 8900, 2) for at in (1000, 2000, 3000)]
    new = charts.Point(4000, 50, 60, 5, 9000, 8900, 2)
    figure = charts.strategy_figure(points, seq=7)
    assert figure["seq"] == 7 and figure["data"][2]["name"] == "Unrealised PnL"
    assert figure["data"][2]["y"] == [10, 10, 10]  # unrealised = margin - wallet
    tail = charts.strategy_tail(new, peak_margin=max(p.margin for p in points), seq=8)
    redrawn = charts.strategy_figure([*points, new], seq=8)
    assert tail["seq"] == 8 and sorted(trace for trace, _, _ in tail["points"]) == list(range(len(figure["data"])))
    for trace, at, y in tail["points"]:
        assert (at, y) == (redrawn["data"][trace]["x"][-1], redrawn["data"][trace]["y"][-1]), trace
    assert tail["points"][-1] == [
        len(figure["data"]) - 1,
        4000,
        pytest.approx(60 / 3110 - 1, rel=1e-7),
    ]  # from the peak


def test_money_formatting():
    assert charts.money(D("1234.5")) == "$1,234.50"
    assert charts.money(D("-3")) == "-$3.00"
    assert charts.money(None) == "—"


def _traces_and_axes(figure):
    layout = figure["layout"]
    return figure["data"], {name: axis for name, axis in layout.items() if name.startswith(("xaxis", "yaxis"))}


def test_a_few_points_draw_markers_and_many_draw_lines():
    one = charts.equity_figure([(5 * H, D("9975.5"))], seq=0, title="Wallet balance — All")
    assert one["data"][0]["mode"] == "lines+markers"  # one point is a dot, not nothing
    many = charts.equity_figure([(n * H, D(n)) for n in range(500)], seq=0, title="t")
    assert many["data"][0]["mode"] == "lines"
    points = [charts.Point(at, 100, 110, 5, 9000, 8900, 2) for at in (1000, 2000)]
    assert {t["mode"] for t in charts.strategy_figure(points, seq=0)["data"]} == {"lines+markers"}
    # The browser widens a short time axis to this span: never an axis of milliseconds.
    assert one["min_x_span"] == charts.strategy_figure(points, seq=0)["min_x_span"] == charts.MIN_X_SPAN_MS >= 60_000


def test_money_axes_read_as_dollars_and_grids_suit_light_and_dark_pages():
    points = [charts.Point(at, 9975.5, 9980, 5, 9000, 8900, 2) for at in (1000, 2000)]
    for figure in (charts.equity_figure([(H, D(9975))], 0, "t"), charts.strategy_figure(points, 0)):
        _, axes = _traces_and_axes(figure)
        for axis in axes.values():
            assert axis["gridcolor"] == charts.GRID_COLOR and axis["zerolinecolor"] == charts.ZERO_LINE_COLOR
        assert figure["layout"]["modebar"]["bgcolor"] == "rgba(0, 0, 0, 0)"
        assert axes["yaxis"]["tickformat"] == "$,.2~f"  # d3: "$9,975" and "-$12.5", not SI's "9.9755k"
    _, axes = _traces_and_axes(charts.strategy_figure(points, 0))
    assert [axes[f"yaxis{n}"].get("tickformat") for n in ("", "2", "3", "4", "5")] == [
        "$,.2~f",
        "$,.2~f",
        None,
        None,
        ".1%",
    ]
    assert axes["yaxis3"]["exponentformat"] == "none"  # price: 9,321.5, never "9.3215k"
    # Grey at low opacity shows on white and on near-black alike; plotly's own grid is white.
    assert charts.GRID_COLOR.startswith("rgba(128, 128, 128,")


def test_the_strategy_legend_sits_under_the_plot_and_the_equity_title_clear_of_the_modebar():
    layout = charts.strategy_figure([], 0)["layout"]
    assert layout["legend"] == {
        "orientation": "h",
        "x": 0,
        "xanchor": "left",
        "y": 0,
        "yanchor": "bottom",
        "yref": "container",
    }
    title = charts.equity_figure([], 0, "Wallet balance — 24H")["layout"]["title"]
    assert (title["xref"], title["xanchor"]) == ("container", "left")  # the modebar takes the top right corner
