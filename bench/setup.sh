#!/usr/bin/env bash
# Installs the peers into bench/.venv (supervisord, circus, honcho) and bench/node_modules (pm2),
# apart from the project's own venv. A peer that fails to install is reported and skipped, not fatal.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"

if [ ! -x "$here/.venv/bin/python" ]; then
    "$python" -m venv "$here/.venv" || { echo "bench/setup.sh: cannot create bench/.venv" >&2; exit 1; }
fi
# py-spy samples the daemon for bench/hotspots.py.
for peer in supervisor circus honcho py-spy; do
    "$here/.venv/bin/pip" install --quiet "$peer" || echo "bench/setup.sh: $peer did not install; it will be reported as not measured" >&2
done

if command -v npm >/dev/null 2>&1; then
    (cd "$here" && npm install --no-save --silent --prefix "$here" pm2 >/dev/null) \
        || echo "bench/setup.sh: pm2 did not install; it will be reported as not measured" >&2
else
    echo "bench/setup.sh: npm not found; pm2 will be reported as not measured" >&2
fi
echo "bench/setup.sh: done"
