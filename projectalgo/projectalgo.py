"""Composition root: reads the settings once, builds the API and registers the pages."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import reflex as rx
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from projectalgo import logs
from projectalgo.api import around_reflex, http_policy
from projectalgo.live_push import live_push
from projectalgo.pages.accounts import AccountsState, accounts_page
from projectalgo.pages.admin import AdminState, admin_page
from projectalgo.pages.alerts import AlertsState, alerts_page
from projectalgo.pages.dashboard import DashboardState, dashboard_page
from projectalgo.pages.group import GroupState, group_page
from projectalgo.pages.invite import InviteState, invite_page
from projectalgo.pages.login import LoginState, LogoutState, login_page, logout_page
from projectalgo.pages.membership import MembershipState, membership_page
from projectalgo.pages.not_found import NotFoundState, not_found_page
from projectalgo.pages.profile import ProfileState, profile_page
from projectalgo.pages.reset import ResetState, reset_page
from projectalgo.pages.shared import SharedPageState, shared_page
from projectalgo.pages.strategies import StrategiesState, strategies_page
from projectalgo.pages.strategy import StrategyPageState, strategy_page
from projectalgo.runtime import services, settle_left_in_doubt
from projectalgo.state import TabGuard, unhandled_event_error
from projectalgo.sweeper import run_sweeper

# At start-up: a wrong setting fails here, not on the first request; the app's events are logged from here on.
logs.configure(services().settings)


class ProjectAlgoApp(rx.App):
    """The Reflex app inside the HTTP policy (projectalgo/api/http_policy.py).

    Reflex's backend server calls `app()` for the ASGI app (the factory `projectalgo.projectalgo:app`, also in
    `reflex run --env prod`), and puts its own CORS middleware outermost, out of api_transformer's reach.
    """

    def __call__(self) -> ASGIApp:
        return http_policy.wrap(super().__call__(), services().settings, self._inline_script_hashes())

    def _inline_script_hashes(self) -> tuple[str, ...]:
        """Those of the built pages when this server serves them (production), else none."""
        for route in self._api.routes if self._api else ():
            if (
                isinstance(route, Mount)  # reflex.utils.exec.get_frontend_mount
                and route.name == "frontend"
                and isinstance(route.app, StaticFiles)
                and route.app.directory is not None
            ):
                return http_policy.inline_script_hashes(Path(route.app.directory))
        return ()


app = ProjectAlgoApp(api_transformer=around_reflex, backend_exception_handler=unhandled_event_error)
app.add_middleware(TabGuard(), index=0)
live_push.start(app, services().broadcast)
app.register_lifespan_task(run_sweeper)  # alerts: the lease's holder sweeps (sweeper.py)


@app.register_lifespan_task
@contextlib.asynccontextmanager
async def finish_posts_on_stop() -> AsyncIterator[None]:
    """A worker's start and stop. At start, the DynamoDB writes an earlier run left in doubt are settled. On
    SIGTERM the server stops accepting connections and waits for the requests it has; then this refuses any post
    still arriving and finishes the batches accepted, so no snapshot answered 201 is lost."""
    settle_left_in_doubt(services().snapshot_store)  # in this worker: the parent that forked it does no work
    yield
    await services().ingestor.stop()
    await asyncio.to_thread(services().ingest_stats.close)  # the figures' last second, with Redis
    await asyncio.to_thread(services().stripe_webhook_stats.close)


app.add_page(login_page, route="/", title="ProjectAlgo", on_load=LoginState.open_login)
app.add_page(login_page, route="/login", title="Sign in · ProjectAlgo", on_load=LoginState.open_login)
app.add_page(logout_page, route="/logout", title="Sign out · ProjectAlgo", on_load=LogoutState.sign_out)
app.add_page(invite_page, route="/invite/[code]", title="Join · ProjectAlgo", on_load=InviteState.open_invite)
app.add_page(profile_page, route="/profile", title="Profile · ProjectAlgo", on_load=ProfileState.open_profile)
app.add_page(reset_page, route="/reset/[token]", title="New password · ProjectAlgo", on_load=ResetState.open_reset)
app.add_page(
    membership_page, route="/membership", title="Membership · ProjectAlgo", on_load=MembershipState.open_membership
)
app.add_page(dashboard_page, route="/dashboard", title="Dashboard · ProjectAlgo", on_load=DashboardState.open_dashboard)
app.add_page(accounts_page, route="/accounts", title="Accounts · ProjectAlgo", on_load=AccountsState.open_accounts)
app.add_page(
    strategies_page, route="/strategies", title="Strategies · ProjectAlgo", on_load=StrategiesState.open_strategies
)
app.add_page(
    strategy_page,
    route="/strategies/[strategy_id]",
    title="Strategy · ProjectAlgo",
    on_load=StrategyPageState.open_strategy,
)
app.add_page(admin_page, route="/admin", title="Admin · ProjectAlgo", on_load=AdminState.open_admin)
app.add_page(alerts_page, route="/alerts", title="Alerts · ProjectAlgo", on_load=AlertsState.open_alerts)
app.add_page(group_page, route="/group", title="Group board · ProjectAlgo", on_load=GroupState.open_group)
app.add_page(
    shared_page, route="/share/[token]", title="Shared performance · ProjectAlgo", on_load=SharedPageState.open_share
)
app.add_page(not_found_page, route="404", title="Not found · ProjectAlgo", on_load=NotFoundState.open_not_found)
