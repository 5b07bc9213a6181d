"""A strategy's status and the times around it, as the pages show them: the status badge, the tab's timer that
ages statuses, times relative or in the viewer's own time zone, and the choice of a chart's time range."""

import reflex as rx
from reflex.event import EventType

from projectalgo import charts
from projectalgo.components.live_chart import local_time_zone

STATUS_COLORS = (("live", "green"), ("stale", "amber"), ("offline", "red"))


def status_badge(status: rx.Var[str]) -> rx.Component:
    return rx.badge(status, color_scheme=rx.match(status, *STATUS_COLORS, "gray"))


def status_timer(on_tick: EventType[()] | EventType[str]) -> rx.Component:
    """The tab's one timer: a hidden moment whose every minute (and mount) sends `on_tick`."""
    return rx.moment(interval=charts.TICK_MS, on_change=on_tick, display="none")


def ago(when: rx.Var[int] | rx.Var[str]) -> rx.Component:
    """Relative time ("5 minutes ago"), kept current by the browser."""
    return rx.moment(when, from_now=True, interval=charts.TICK_MS)


def local_minute(value: rx.Var[str], *, otherwise: str) -> rx.Component:
    """An ISO time in the viewer's own time zone, to the minute; `otherwise` when there is none."""
    return rx.cond(value != "", rx.moment(value, format="YYYY-MM-DD HH:mm", local=True), otherwise)


def time_zone_note() -> rx.Component:
    return rx.text(
        "Times are in your browser's time zone, ", local_time_zone(id="time-zone"), ".", size="1", color_scheme="gray"
    )


def range_picker(current: rx.Var[str], on_change: EventType[()] | EventType[str | list[str]]) -> rx.Component:
    return rx.segmented_control.root(
        *(rx.segmented_control.item(key, value=key) for key in charts.RANGES),
        value=current,
        on_change=on_change,
        size="1",
        aria_label="Time range",
    )
