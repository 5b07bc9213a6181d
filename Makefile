.PHONY: run prod test test-fast lint format migrate

run:        ## set up and start the app on embedded defaults
	scripts/run

prod:       ## production: settings from the environment, migrations, WORKERS workers on PORT (README: Deploying)
	scripts/prod

test:       ## set up and run the whole test suite (lint included)
	scripts/test

test-fast:  ## lint and every test but the e2e (browser) ones: no chromium, no front-end build
	scripts/test --fast

lint:       ## ruff format --check, ruff check and mypy; installs the Python packages alone (no apt, Java, browser)
	scripts/setup lint && . scripts/env.sh && ruff format --check . && ruff check . && mypy

format:
	scripts/setup lint && . scripts/env.sh && ruff format . && ruff check --fix .

migrate:
	scripts/setup run && . scripts/env.sh && python -m projectalgo migrate
