"""LiveChart: plotly.js drawing a figure once and appending live points (assets/live_chart.jsx).

rx.plotly re-sends and re-draws the whole figure on every change; this sends only the new points.
"""

from typing import Any

import reflex as rx


class LiveChart(rx.NoSSRComponent):
    library = "$/public/live_chart.jsx"
    tag = "LiveChart"
    is_default = False
    lib_dependencies: list[str] = ["plotly.js-basic-dist-min@3.7.0"]

    figure: rx.Var[dict[str, Any]]
    tail: rx.Var[dict[str, Any]]
    on_resync: rx.EventHandler[rx.event.no_args_event_spec]


live_chart = LiveChart.create
