#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: installs what the tests need (PostgreSQL from Debian when missing,
# the Python dependencies in .venv), then lint, type-check and pytest. The tests start their own PostgreSQL cluster,
# S3-compatible server (moto) and HTTP servers on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: PostgreSQL (a throwaway cluster per test session) and h2load (benchmark smoke test).
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
command -v callgrind_control >/dev/null 2>&1 || missing+=(valgrind)  # benchmark smoke test, --instructions
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing Debian packages: ${missing[*]} (apt-get install them)" >&2
    exit 1
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# Pinned, tested versions (requirements/constraints.txt) keep the resolver fast and CI reproducible.
.venv/bin/python -m pip install -q --disable-pip-version-check -c requirements/constraints.txt -e '.[dev]' \
  2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import flyteconnect, grpc, psycopg, httpx, s3fs, moto, hypothesis, mkdocs, kubernetes_validate' # fail early when an install step failed

.venv/bin/ruff check src tests benchmarks tools
.venv/bin/mypy
exec .venv/bin/pytest -q "$@"
