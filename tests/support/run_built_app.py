"""`reflex run --env prod --backend-host 127.0.0.1` on a front end already built into REFLEX_WEB_WORKDIR
(tests/support/servers.py start_app_on_built_pages): the same start, less compiling and building the pages."""

import sys

from reflex import reflex
from reflex.utils import build

reflex._compile_app = lambda **_: None
build.setup_frontend_prod = lambda _root: None
sys.exit(reflex.cli(["run", "--env", "prod", "--backend-host", "127.0.0.1"]))
