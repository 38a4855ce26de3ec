#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: installs what the tests need (PostgreSQL from Debian when missing,
# the Python dependencies in .venv), then lint, type-check and pytest. The tests start their own PostgreSQL cluster,
# S3-compatible server (moto) and HTTP servers on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: PostgreSQL (a throwaway cluster per test session), h2load (benchmark smoke test),
# Redis (the shared state store) and nginx (the gRPC load balancer in front of the multi-replica tests).
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
command -v callgrind_control >/dev/null 2>&1 || missing+=(valgrind)  # benchmark smoke test, --instructions
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
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
# The compat virtualenv (flytekit 1.16.31 and its plugins; cached per machine, ~3 min to build fresh) builds in the
# background while the main one installs and the main suite runs.
compat_log=$(mktemp)
bash scripts/compat_venv.sh >"$compat_log.path" 2>"$compat_log" &
compat_pid=$!
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# Pinned, tested versions (requirements/constraints.txt) keep the resolver fast and CI reproducible.
.venv/bin/python -m pip install -q --disable-pip-version-check -c requirements/constraints.txt -e '.[dev]' \
  2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import flyteconnect, grpc, psycopg, httpx, s3fs, moto, hypothesis, mkdocs, kubernetes_validate, redis, aiohttp' # fail early when an install step failed

.venv/bin/ruff check src tests benchmarks tools
.venv/bin/mypy
# Paths under tests/compat run in the compat virtualenv, other paths in .venv, options in both; no paths: everything.
main_args=() compat_args=() main_paths=0 compat_paths=0
for arg in "$@"; do
  if [[ "$arg" == tests/compat* ]]; then compat_args+=("$arg"); compat_paths=1
  elif [[ "$arg" == -* ]]; then main_args+=("$arg"); compat_args+=("$arg")
  else main_args+=("$arg"); main_paths=1
  fi
done
status=0
if [ $main_paths = 1 ] || [ $compat_paths = 0 ]; then
  .venv/bin/pytest -q "${main_args[@]}" || status=$?
fi

# The compat suite (tests/compat: flytekit's connectors served unchanged) in the compat virtualenv, with this
# checkout's sources first on the path.
if [ $compat_paths = 1 ] || [ $main_paths = 0 ]; then
  if ! wait "$compat_pid"; then
    cat "$compat_log" >&2
    echo "compat virtualenv build failed" >&2
    exit 1
  fi
  compat_venv=$(cat "$compat_log.path")
  [ $compat_paths = 1 ] || compat_args+=(tests/compat)
  PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" "$compat_venv/bin/python" -m pytest -q "${compat_args[@]}" \
    || status=$?
else
  wait "$compat_pid" || true
fi
rm -f "$compat_log" "$compat_log.path"
exit $status
