"""Run localstripe on 127.0.0.1 only, with its disk persistence turned off.

Stock localstripe listens on every interface and pickles its whole state into a fixed file in the
system temp folder after each write (and reloads it at start), which would leak state between runs.
"""

import sys

from aiohttp import web
from localstripe import resources, server


def main() -> None:
    port = int(sys.argv[1])
    resources.Store.dump_to_disk = lambda self: None
    resources.Store.try_load_from_disk = lambda self: None
    web.run_app(server.app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
