.PHONY: run test lint format migrate bench

run:        ## set up and start the app on embedded defaults
	scripts/run

test:       ## set up and run the whole test suite (lint included)
	scripts/test

lint:
	scripts/setup test && . scripts/env.sh && ruff format --check . && ruff check .

format:
	. scripts/env.sh && ruff format . && ruff check --fix .

migrate:
	scripts/setup run && . scripts/env.sh && python -m projectalgo migrate
