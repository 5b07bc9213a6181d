"""CSV downloads through signed links: over HTTP to the running app, and in this process on the API's ASGI app."""

import csv
import io
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import anyio
import httpx
import pytest
import requests
from sqlalchemy import Engine, update

from projectalgo import exports, members
from projectalgo.api import build_api
from projectalgo.clock import utcnow
from projectalgo.db import session_scope
from projectalgo.integrations.sqlstore import SqlSnapshotStore
from projectalgo.models import LoginSession, Strategy, User
from projectalgo.snapshots import ALL_TIME_END_MS, NUMBER_FIELDS, Snapshot
from tests.conftest import TEST_SECRET_KEY_BASE
from tests.factories import make_admin, make_member, make_strategy, store_one

IDLE = timedelta(days=1)


def _sign_in(engine: Engine, user: User) -> tuple[int, str]:
    """A new sign-in of `user`: (its login session id, its browser token)."""
    with session_scope(engine) as session:
        token = members.start_session(session, user=user, days=30)
        return members.user_for_session(session, token, idle=IDLE).login_session_id, token


def _link(user_id, login_id, strategy_id, start=0, end=ALL_TIME_END_MS, now=None, secret=TEST_SECRET_KEY_BASE):
    return exports.signed_link(
        secret,
        user_id=user_id,
        login_session_id=login_id,
        strategy_id=strategy_id,
        start_ms=start,
        end_ms=end,
        now_s=int(time.time()) if now is None else now,
    )


def _snapshot(engine: Engine, strategy_id: int, at_ms: int, number: Decimal, symbol: str = "XBTUSD") -> Snapshot:
    with session_scope(engine) as session:
        account_id = session.get(Strategy, strategy_id).account_id
    return Snapshot(strategy_id, account_id, at_ms, **dict.fromkeys(NUMBER_FIELDS, number), symbol=symbol)


def test_a_signed_link_downloads_the_range_as_csv_and_nothing_else_does(app_server, app_engine):
    owner = make_member(app_engine)
    login_id, _ = _sign_in(app_engine, owner)
    strategy_id, _ = make_strategy(app_engine, owner, name='Csv, "quoted"')
    store = SqlSnapshotStore(app_engine)
    for n in range(2500):  # more than one store page
        store_one(store, _snapshot(app_engine, strategy_id, 1_700_000_000_000 + n * 1000, Decimal(n)))
    answer = requests.get(
        app_server.url + _link(owner.id, login_id, strategy_id, start=1_700_000_010_000, end=1_700_002_010_000),
        timeout=30,
    )
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert 'filename="Csv___quoted_-snapshots.csv"' in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["time_utc", *NUMBER_FIELDS, "symbol"]
    assert len(rows) == 1 + 2000 and rows[1][0] == "2023-11-14T22:13:30.000Z" and rows[1][1] == "10"

    admin = make_admin(app_engine)
    admin_login, _ = _sign_in(app_engine, admin)
    assert requests.get(app_server.url + _link(admin.id, admin_login, strategy_id), timeout=30).status_code == 200
    other = make_member(app_engine)
    other_login, _ = _sign_in(app_engine, other)
    refused = requests.get(app_server.url + _link(other.id, other_login, strategy_id), timeout=10)
    assert (refused.status_code, refused.json()["error"]) == (404, "not_found")
    expired = requests.get(
        app_server.url + _link(owner.id, login_id, strategy_id, now=int(time.time()) - 61), timeout=10
    )
    assert (expired.status_code, expired.json()["error"]) == (403, "invalid_link")
    forged = requests.get(app_server.url + _link(owner.id, login_id, strategy_id, secret="x" * 40), timeout=10)
    assert forged.status_code == 403
    tampered = requests.get(
        app_server.url + _link(owner.id, login_id, strategy_id).replace("start=0", "start=1"), timeout=10
    )
    assert tampered.status_code == 403


# --- In this process, on the API's ASGI app and this test's own database ------------------------------------


def _get(url: str) -> httpx.Response:
    """GET from the API built in this process (on whatever services() holds now)."""

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_api(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.get(url)

    with ThreadPoolExecutor(max_workers=1) as thread:  # an event loop of its own
        return thread.submit(anyio.run, get).result()


@pytest.fixture
def world(app_services):
    """Alice signed in, with her strategy holding one snapshot; Bob, another member, signed in."""
    engine = app_services
    alice, bob = make_member(engine, name="Alice"), make_member(engine, name="Bob")
    strategy_id, _ = make_strategy(engine, alice)
    store_one(SqlSnapshotStore(engine), _snapshot(engine, strategy_id, 1_700_000_000_000, Decimal(1)))
    (login_id, token), (bob_login, _) = _sign_in(engine, alice), _sign_in(engine, bob)
    return {"engine": engine, "alice": alice, "bob": bob, "strategy_id": strategy_id, "login_id": login_id,
            "token": token, "bob_login": bob_login}  # fmt: skip


def _refused_link(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "invalid_link" and response.json()["detail"]


def test_a_link_is_bound_to_the_sign_in_it_was_made_for(world):
    engine, alice, strategy_id = world["engine"], world["alice"], world["strategy_id"]
    link = _link(alice.id, world["login_id"], strategy_id)
    assert _get(link).status_code == 200
    # Another login session, even of another member's own, signed with the server's secret, is not this one's.
    _refused_link(_get(_link(alice.id, world["bob_login"], strategy_id)))
    _refused_link(_get(_link(world["bob"].id, world["login_id"], strategy_id)))
    # The login session id is signed: a link cannot be moved to another sign-in.
    second_login, _ = _sign_in(engine, alice)
    _refused_link(_get(link.replace(f"login={world['login_id']}", f"login={second_login}")))
    with session_scope(engine) as session:
        members.end_session(session, world["token"])  # sign-out
    _refused_link(_get(link))
    assert _get(_link(alice.id, second_login, strategy_id)).status_code == 200


@pytest.mark.parametrize("ended", ["expired", "idle", "user disabled"])
def test_a_link_dies_with_its_sign_in(world, ended):
    engine, alice = world["engine"], world["alice"]
    link = _link(alice.id, world["login_id"], world["strategy_id"])
    long_ago = utcnow() - timedelta(days=400)
    with session_scope(engine) as session:
        if ended == "user disabled":
            session.execute(update(User).where(User.id == alice.id).values(disabled_at=utcnow()))
        else:
            column = {"expired": LoginSession.expires_at, "idle": LoginSession.last_seen_at}[ended]
            session.execute(update(LoginSession).where(LoginSession.id == world["login_id"]).values({column: long_ago}))
    _refused_link(_get(link))


def test_the_server_caps_a_links_lifetime_whatever_the_link_says(world):
    alice, login_id, strategy_id = world["alice"], world["login_id"], world["strategy_id"]
    now = int(time.time())
    assert _get(_link(alice.id, login_id, strategy_id, now=now - exports.LINK_SECONDS + 5)).status_code == 200
    _refused_link(_get(_link(alice.id, login_id, strategy_id, now=now - exports.LINK_SECONDS - 2)))  # expired
    # Correctly signed, but expiring later than any link this server issues: refused.
    _refused_link(_get(_link(alice.id, login_id, strategy_id, now=now + 3600)))
    _refused_link(_get(_link(alice.id, login_id, strategy_id, now=now + 10 * 365 * 86400)))


@pytest.mark.parametrize(
    "sig",
    ["é" * 64, "ä" * 32, "A" * 64, "g" * 64, "0" * 63, "0" * 65, "", "%00" * 64, "0" * 62 + "\u00ff\u00ff"],
)
def test_a_malformed_signature_answers_4xx_in_the_error_shape(world, sig):
    link = _link(world["alice"].id, world["login_id"], world["strategy_id"])
    answer = _get(link.split("&sig=")[0] + "&" + httpx.QueryParams({"sig": sig}).__str__())
    assert 400 <= answer.status_code < 500, answer.text
    assert set(answer.json()) == {"error", "detail"}


def test_a_member_who_may_not_read_the_strategy_gets_404(world):
    bob = world["bob"]
    answer = _get(_link(bob.id, world["bob_login"], world["strategy_id"]))
    assert (answer.status_code, answer.json()["error"]) == (404, "not_found")


def test_text_cells_cannot_start_a_formula_while_the_apps_numbers_stay_numbers(world):
    engine, strategy_id = world["engine"], world["strategy_id"]
    store = SqlSnapshotStore(engine)
    symbols = ['=HYPERLINK("http://example.com","x")', "+1", "-2", "@SUM(A1)", "\tX", "\rX", "XBTUSD", "a=b"]
    for n, symbol in enumerate(symbols, start=1):
        store_one(store, _snapshot(engine, strategy_id, 1_700_000_000_000 + n, Decimal("-12.5"), symbol=symbol))
    answer = _get(_link(world["alice"].id, world["login_id"], strategy_id))
    rows = list(csv.reader(io.StringIO(answer.text, newline="")))[2:]  # after the header and the first snapshot
    assert [row[-1] for row in rows] == [
        '\'=HYPERLINK("http://example.com","x")',
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "'\tX",
        "'\rX",
        "XBTUSD",
        "a=b",
    ]
    assert all(row[1:-1] == ["-12.5"] * len(NUMBER_FIELDS) for row in rows)
    assert answer.text.count("," + ",".join(["-12.5"] * len(NUMBER_FIELDS)) + ",") == len(symbols)  # as written


def test_a_strategy_named_in_any_script_downloads_under_an_ascii_filename(world):
    engine, owner = world["engine"], world["alice"]
    name = "Стратегия € 趋势"  # a header is Latin-1 at most: such a name in it was a 500
    strategy_id, _ = make_strategy(engine, owner, name=name)
    answer = _get(_link(owner.id, world["login_id"], strategy_id))
    assert answer.status_code == 200, answer.text
    assert f'filename="{"_" * len(name)}-snapshots.csv"' in answer.headers["content-disposition"]
