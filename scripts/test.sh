#!/usr/bin/env bash
# Provision the test services this machine can run (Mosquitto, FerretDB, Chromium, mosaik's Python 3.12
# environment), then run ruff and the whole test suite.
# Usage: bash scripts/test.sh [pytest args...]
# With CI=true (or GRIDLOOP_REQUIRE_SERVICES=1) a missing service fails the run instead of skipping tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REQUIRE=${GRIDLOOP_REQUIRE_SERVICES:-${CI:-}}
[ "$REQUIRE" = "true" ] && REQUIRE=1
CACHE=${GRIDLOOP_CACHE:-$HOME/.cache/gridloop}
mkdir -p "$CACHE"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

# 1. Mosquitto, from Debian's packages when missing.
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
  echo "== installing mosquitto (apt-get)"
  as_root apt-get update -qq || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients >/dev/null || true
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
if [ ! -x "$MOSQUITTO" ] && [ "$REQUIRE" = 1 ]; then echo "mosquitto is required but could not be installed" >&2; exit 1; fi

# 1b. Chromium for the live view's browser test (tests/view), from Debian's packages when missing; Playwright for
# Python (a dev dependency) drives it; Playwright's own browser download is not needed.
find_chromium() { command -v chromium || command -v chromium-browser || true; }
if [ -z "$(find_chromium)" ]; then
  echo "== installing chromium (apt-get)"
  as_root apt-get update -qq || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || true
fi
CHROMIUM=$(find_chromium)
if [ -z "$CHROMIUM" ] && [ "$REQUIRE" = 1 ]; then echo "chromium is required but could not be installed" >&2; exit 1; fi
if [ -n "$CHROMIUM" ]; then export GRIDLOOP_CHROMIUM="$CHROMIUM"; fi

# 2. The Python environment.
VENV=${GRIDLOOP_VENV:-$ROOT/.venv}
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q -e ".[dev]"

free_port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { "$VENV/bin/python" - "$1" <<'PY'
import socket, sys, time
port = int(sys.argv[1]); deadline = time.time() + 30
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close(); sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PY
}

WORK=$(mktemp -d -t gridloop-test-XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

# 3. Mosquitto on free loopback ports: one per pytest worker (platforms of two tests on one broker would see each
#    other's tenants), GRIDLOOP_TEST_WORKERS of them (default 2: most slow tests wait on real time, not the CPU).
WORKERS=${GRIDLOOP_TEST_WORKERS:-2}
if [ -x "$MOSQUITTO" ]; then
  BROKERS=()
  for i in $(seq 1 "$WORKERS"); do
    MQTT_PORT=$(free_port)
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_inflight_messages 1000\n' \
      "$MQTT_PORT" > "$WORK/mosquitto-$i.conf"
    "$MOSQUITTO" -c "$WORK/mosquitto-$i.conf" >"$WORK/mosquitto-$i.log" 2>&1 &
    PIDS+=($!)
    wait_port "$MQTT_PORT" || { echo "mosquitto did not start" >&2; cat "$WORK/mosquitto-$i.log" >&2; exit 1; }
    BROKERS+=("mqtt://127.0.0.1:$MQTT_PORT")
  done
  export GRIDLOOP_TEST_BROKER=${BROKERS[0]}
  GRIDLOOP_TEST_BROKERS=$(IFS=,; echo "${BROKERS[*]}")
  export GRIDLOOP_TEST_BROKERS
  echo "== mosquitto on $GRIDLOOP_TEST_BROKERS"
fi

# 4. FerretDB v1.24.2 (SQLite backend) as the MongoDB-wire server, built once from tests/fixtures/ferretdb.
FERRET_SRC=$ROOT/tests/fixtures/ferretdb
FERRET_BIN=$CACHE/ferretdb-launcher-$(sha256sum "$FERRET_SRC/go.mod" "$FERRET_SRC/main.go" | sha256sum | cut -c1-12)
if [ ! -x "$FERRET_BIN" ] && command -v go >/dev/null; then
  echo "== building the FerretDB launcher (once)"
  (cd "$FERRET_SRC" && go build -o "$FERRET_BIN.tmp" . && mv "$FERRET_BIN.tmp" "$FERRET_BIN") || true
fi
if [ -x "$FERRET_BIN" ]; then
  MONGO_PORT=$(free_port)
  FERRETDB_TELEMETRY=disable DO_NOT_TRACK=1 "$FERRET_BIN" -listen "127.0.0.1:$MONGO_PORT" -dir "$WORK/ferretdb" \
    >"$WORK/ferretdb.log" 2>&1 &
  PIDS+=($!)
  wait_port "$MONGO_PORT" || { echo "FerretDB did not start" >&2; cat "$WORK/ferretdb.log" >&2; exit 1; }
  export GRIDLOOP_TEST_MONGODB="mongodb://127.0.0.1:$MONGO_PORT/gridloop_test"
  export GRIDLOOP_FERRETDB_BIN="$FERRET_BIN"  # tests that stop and restart a server of their own
  echo "== FerretDB on $GRIDLOOP_TEST_MONGODB"
elif [ "$REQUIRE" = 1 ]; then
  echo "FerretDB launcher could not be built (is Go installed?)" >&2; exit 1
fi

# 5. mosaik 3.7 (needs Python >= 3.12) in its own virtual environment, built once per requirements: gridloop's
#    dependencies and its mosaik extra; gridloop itself comes from this tree (PYTHONPATH, and a `gridloop` launcher).
python312() {
  local c
  for c in "${GRIDLOOP_PYTHON312:-}" "$(command -v python3.12 || true)" \
      "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.12*/bin/python3.12 /usr/bin/python3.12; do
    [ -n "$c" ] && [ -x "$c" ] && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
      && { echo "$c"; return 0; }
  done
  return 1
}
"$VENV/bin/python" -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(p["dependencies"] + p["optional-dependencies"]["mosaik"]))' > "$WORK/mosaik-requirements.txt"
MOSAIK_VENV=$CACHE/mosaik-venv-$(sha256sum "$WORK/mosaik-requirements.txt" | cut -c1-12)
if [ ! -f "$MOSAIK_VENV/.complete" ] && PY312=$(python312); then
  echo "== building the mosaik environment with $PY312 (once)"
  rm -rf "$MOSAIK_VENV"
  TMP_VENV=$MOSAIK_VENV.tmp$$
  if "$PY312" -m venv "$TMP_VENV" && "$TMP_VENV/bin/python" -m pip install -q -r "$WORK/mosaik-requirements.txt" \
      && mv -T "$TMP_VENV" "$MOSAIK_VENV" 2>/dev/null; then  # a concurrent build that finished first wins
    printf '#!%s\nimport sys\nfrom gridloop.cli import main\nsys.exit(main())\n' "$MOSAIK_VENV/bin/python" \
      > "$MOSAIK_VENV/bin/gridloop"
    chmod +x "$MOSAIK_VENV/bin/gridloop" && touch "$MOSAIK_VENV/.complete"
  else
    rm -rf "$TMP_VENV"
  fi
fi
if [ -f "$MOSAIK_VENV/.complete" ]; then
  export GRIDLOOP_MOSAIK_PYTHON="$MOSAIK_VENV/bin/python"
  echo "== mosaik environment $MOSAIK_VENV"
elif [ "$REQUIRE" = 1 ]; then
  echo "the mosaik environment (Python >= 3.12 with mosaik 3.7) is required but could not be built" >&2; exit 1
fi

export GRIDLOOP_REQUIRE_SERVICES=$REQUIRE
echo "== ruff"
"$VENV/bin/ruff" check .
echo "== pytest"
PARALLEL=()
[ "$WORKERS" -gt 1 ] && PARALLEL=(-n "$WORKERS" --dist worksteal)
"$VENV/bin/python" -m pytest -q "${PARALLEL[@]}" "$@"
