"""The pages' tables, one way on every page: below a width their rows stack as cards, each value after its
column's name, so nothing is wider than a phone's screen and nothing hides off to the side."""

from collections.abc import Callable, Iterable

import reflex as rx

# Below this width (phones) a table's rows stack as cards.
PHONE_WIDTH = "48em"

# A row's buttons: larger where they are tapped (phones), small beside a table's columns.
ROW_ACTION_SIZE = rx.breakpoints(initial="2", sm="1")

# The grid column of a cell that takes a whole line of its card (a row's actions); an ordinary cell when unstacked.
WHOLE_CARD = "1 / -1"


def _stacked_below(width: str) -> dict:
    """The style that stacks a table's rows as cards below `width`, each value after its cell's data-label."""
    return {
        f"@media screen and (max-width: calc({width} - 0.02px))": {
            "& thead": {"display": "none"},
            "& table, & tbody, & td, & tbody th": {"display": "block", "width": "100%"},
            "& table": {"height": "auto"},  # Radix gives it height 0, which a block keeps: the rows would be clipped
            # Each row a card: its first cell (the name or the time) spans it, the others fill columns below.
            "& tr": {
                "display": "grid",
                "grid_template_columns": "repeat(auto-fill, minmax(10em, 1fr))",
                "column_gap": "1em",
                "padding_y": "0.5em",
                "box_shadow": "inset 0 -1px var(--gray-a5)",
            },
            "& tr > :first-child": {"grid_column": WHOLE_CARD, "font_weight": "500"},
            "& td, & tbody th": {
                "box_shadow": "none",
                "padding": "0.2em 0",
                "height": "auto",
                "overflow_wrap": "anywhere",
            },
            "& td:empty": {"display": "none"},  # an empty field: no bare label
            "& td[data-label]::before": {"content": 'attr(data-label) ": "', "color": "var(--gray-11)"},
        }
    }


def stacked_table(
    headers: Iterable[str | rx.Component],
    rows: rx.Var,
    row: Callable[..., rx.Component],
    *,
    id_: str,
    stack_below: str = PHONE_WIDTH,
    **table_props: object,
) -> rx.Component:
    """A table of `row(item)` for each of `rows` under `headers`, whose rows stack as cards below `stack_below`."""
    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(*(rx.table.column_header_cell(h) for h in headers))),
            rx.table.body(rx.foreach(rows, row)),
            width="100%",
            id=id_,
            **table_props,
        ),
        overflow_x="auto",
        width="100%",
        style=_stacked_below(stack_below),
    )


def labelled_cell(label: str, *children: rx.Component | rx.Var | str, **props: object) -> rx.Component:
    """A table cell named by its column (data-label): a stacked row shows the name before the value."""
    return rx.table.cell(*children, custom_attrs={"data-label": label}, **props)
