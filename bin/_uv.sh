# Sourced by bin/latitude and bin/test: find uv, or install it into .tools/ (needs only Python 3.11+).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if command -v uv >/dev/null 2>&1; then
  UV="$(command -v uv)"
elif [ -x "$ROOT/.tools/bin/uv" ]; then
  UV="$ROOT/.tools/bin/uv"
else
  PY="$(command -v python3.13 || command -v python3.12 || command -v python3.11 || command -v python3)"
  "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "latitude needs Python 3.11 or newer")'
  echo "setting up: installing uv into .tools/ (once)" >&2
  "$PY" -m venv "$ROOT/.tools"
  "$ROOT/.tools/bin/python" -m pip install --quiet --disable-pip-version-check uv
  UV="$ROOT/.tools/bin/uv"
fi
export UV_LINK_MODE="${UV_LINK_MODE:-copy}"
