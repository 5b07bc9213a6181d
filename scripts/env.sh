# Sourced by the run and test scripts: the tools installed by scripts/setup, and Reflex kept offline.
export PATH="$PWD/.tools/node_modules/.bin:$PWD/.venv/bin:$PATH"
export REFLEX_TELEMETRY_ENABLED=false
export REFLEX_CHECK_LATEST_VERSION=false
