# Sourced by bin/latitude and bin/test: find uv, or install it into .tools/ (needs only Python 3.11+).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The first interpreter that actually runs and is 3.11 or newer. A pyenv shim exists for every
# version pyenv knows of, installed or not, and fails when run: so each candidate is run, not just
# found. LATITUDE_PYTHON, when set, is tried first. `ensurepip` too: Debian's python3 without
# python3-venv imports venv but cannot create one.
_latitude_python() {
  local candidate
  for candidate in ${LATITUDE_PYTHON:-} python3.13 python3.12 python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; then
      # the real executable, not the shim: later calls do not depend on pyenv's state
      "$candidate" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  return 1
}

if command -v uv >/dev/null 2>&1 && uv --version >/dev/null 2>&1; then
  UV="$(command -v uv)"
elif [ -x "$ROOT/.tools/bin/uv" ] && "$ROOT/.tools/bin/uv" --version >/dev/null 2>&1; then
  UV="$ROOT/.tools/bin/uv"
else
  if ! PY="$(_latitude_python)"; then
    echo "latitude needs Python 3.11 or newer (with venv and ensurepip): none of python3.13, python3.12, python3.11, python3, python runs here." >&2
    echo "Install one, or point LATITUDE_PYTHON at it." >&2
    exit 1
  fi
  echo "setting up: installing uv into .tools/ with $PY (once)" >&2
  rm -rf "$ROOT/.tools"
  "$PY" -m venv "$ROOT/.tools"
  "$ROOT/.tools/bin/python" -m pip install --quiet --disable-pip-version-check uv
  UV="$ROOT/.tools/bin/uv"
fi
# uv chooses the interpreter for the project environment too: give it the one that runs, so it
# never picks a pyenv shim that fails.
if [ -z "${UV_PYTHON:-}" ] && PY_FOR_UV="$(_latitude_python)"; then
  export UV_PYTHON="$PY_FOR_UV"
fi
export UV_LINK_MODE="${UV_LINK_MODE:-copy}"
