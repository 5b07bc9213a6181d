"""Composition root: reads the settings once, builds the API and registers the pages."""

import reflex as rx

from projectalgo.api import build_api
from projectalgo.pages.accounts import AccountsState, accounts_page
from projectalgo.pages.dashboard import dashboard_page
from projectalgo.pages.invite import InviteState, invite_page
from projectalgo.pages.login import LoginState, LogoutState, login_page, logout_page
from projectalgo.pages.membership import MembershipState, membership_page
from projectalgo.pages.strategies import StrategiesState, strategies_page
from projectalgo.runtime import services
from projectalgo.state import AuthState

services()  # fail at start-up, not on the first request, when a setting is wrong

app = rx.App(api_transformer=build_api())
app.add_page(login_page, route="/", title="ProjectAlgo", on_load=LoginState.open_login)
app.add_page(login_page, route="/login", title="Sign in · ProjectAlgo", on_load=LoginState.open_login)
app.add_page(logout_page, route="/logout", title="Sign out · ProjectAlgo", on_load=LogoutState.sign_out)
app.add_page(invite_page, route="/invite/[code]", title="Join · ProjectAlgo", on_load=InviteState.open_invite)
app.add_page(
    membership_page, route="/membership", title="Membership · ProjectAlgo", on_load=MembershipState.open_membership
)
app.add_page(dashboard_page, route="/dashboard", title="Dashboard · ProjectAlgo", on_load=AuthState.require_member)
app.add_page(accounts_page, route="/accounts", title="Accounts · ProjectAlgo", on_load=AccountsState.open_accounts)
app.add_page(
    strategies_page, route="/strategies", title="Strategies · ProjectAlgo", on_load=StrategiesState.open_strategies
)
