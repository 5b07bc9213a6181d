"""The dashboard's comparison table: its order by any column, rows without a figure last either way."""

from projectalgo.pages.dashboard import StatusRow, sorted_rows


def row(n, name, status, last, returns):
    return StatusRow(n, name, "Acct", status, last, [], "—", [*returns, None])


ROWS = [
    row(1, "beta", "stale", 50, [0.01, 0.02, None, None, 0.3]),
    row(2, "Alpha", "live", 90, [-0.05, 0.10, 0.2, 0.2, 0.2]),
    row(3, "gamma", "never", 0, [None, None, None, None, None]),
]


def ids(rows):
    return [r.id for r in rows]


def test_by_name_status_and_last_snapshot():
    assert ids(sorted_rows(ROWS, "name", False)) == [2, 1, 3]  # case does not matter
    assert ids(sorted_rows(ROWS, "name", True)) == [3, 1, 2]
    assert ids(sorted_rows(ROWS, "status", False)) == [2, 1, 3]
    assert ids(sorted_rows(ROWS, "last", True)) == [2, 1, 3]  # never posted: last, either way
    assert ids(sorted_rows(ROWS, "last", False)) == [1, 2, 3]


def test_by_a_ranges_return_with_no_figure_last_either_way():
    assert ids(sorted_rows(ROWS, "24H", True)) == [1, 2, 3]
    assert ids(sorted_rows(ROWS, "24H", False)) == [2, 1, 3]
    assert ids(sorted_rows(ROWS, "30D", True)) == [2, 1, 3]
    assert ids(sorted_rows(ROWS, "30D", False)) == [2, 1, 3]
    assert ids(sorted_rows(ROWS, "drawdown", True)) == [1, 2, 3]  # nobody has one: the order as it was
