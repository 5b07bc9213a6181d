"""LiveChart: plotly.js drawing a figure once and appending live points (assets/live_chart.jsx).

rx.plotly re-sends and re-draws the whole figure on every change; this sends only the new points. The same file
gives LocalTimeZone, the browser's time zone by name, which the pages state beside their times.
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
    # Reflex reads an event trigger's spec from this annotation at run time; its types do not model the idiom.
    on_resync: rx.EventHandler[rx.event.no_args_event_spec]  # type: ignore[type-arg, valid-type]


class LocalTimeZone(rx.NoSSRComponent):
    """Rendered in the browser only: the server does not know the viewer's zone."""

    library = "$/public/live_chart.jsx"
    tag = "LocalTimeZone"
    is_default = False


live_chart = LiveChart.create
local_time_zone = LocalTimeZone.create
