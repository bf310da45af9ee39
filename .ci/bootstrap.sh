#!/usr/bin/env bash
# Prove the newcomer's path: a copy of this checkout, no uv anywhere on PATH, and pyenv shims
# for python3.13 and python3.12 that fail when run (as they do when those versions are not
# selected). `./bin/latitude --help` must install uv into .tools/, create the environment from
# uv.lock and succeed; `./bin/latitude validate` must then load a protocol.
#
#   bash .ci/bootstrap.sh          # from .ci/run, or by hand; exit 0 when the path works
#
# It reuses uv's and pip's caches (under $HOME), so a warm machine pays seconds, not a rebuild.
# LATITUDE_BOOTSTRAP_OFFLINE=1 (set by .ci/run once the cache is filled) runs uv offline: a
# registry proxy that sends no cache headers (as CI's does) makes online uv fetch every sdist
# again and rebuild it (llama-cpp-python: minutes); offline, uv takes the wheel it built before.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
log() { echo "bootstrap.sh: $*" >&2; }

scratch="$(mktemp -d "${TMPDIR:-/tmp}/latitude-bootstrap.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

# The checkout as it is (tracked files, including uncommitted edits), without .venv or .tools.
mkdir "$scratch/repo"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
  | xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh \
  | tar --null -T - -cf -) | tar -xf - -C "$scratch/repo"
for must in bin/latitude bin/_uv.sh uv.lock pyproject.toml; do
  [ -e "$scratch/repo/$must" ] || { log "the scratch copy lacks $must"; exit 1; }
done

# pyenv's behaviour for a version it knows of but has not selected.
mkdir "$scratch/shims"
for v in 3.13 3.12; do
  cat >"$scratch/shims/python$v" <<EOF
#!/bin/sh
echo "pyenv: python$v: command not found" >&2
exit 127
EOF
  chmod +x "$scratch/shims/python$v"
done

# PATH: the failing shims first, then every directory of ours that holds no uv.
path="$scratch/shims"
IFS=: read -r -a dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  [ -n "$d" ] && [ -d "$d" ] || continue
  [ -e "$d/uv" ] && continue
  path="$path:$d"
done

cd "$scratch/repo"
run() {
  # The caller's environment (certificates, registry settings) minus anything of uv's, ours or a
  # virtualenv's, with the PATH above and no stdin.
  local unset=() name
  for name in $(compgen -e); do
    case "$name" in UV_*|LATITUDE_*|VIRTUAL_ENV|PYTHONPATH|PYTHONHOME|CONDA_PREFIX) unset+=(-u "$name") ;; esac
  done
  env "${unset[@]}" PATH="$path" ${LATITUDE_BOOTSTRAP_OFFLINE:+UV_OFFLINE=1} "$@" </dev/null
}
if run sh -c 'command -v uv' >/dev/null 2>&1; then
  log "uv is still reachable on the scratch PATH: $(run sh -c 'command -v uv')"
  exit 1
fi
start=$SECONDS
if ! run ./bin/latitude --help >"$scratch/help.out" 2>"$scratch/help.err"; then
  log "./bin/latitude --help failed on the newcomer's path:"
  cat "$scratch/help.err" >&2
  exit 1
fi
grep -q "Usage: latitude" "$scratch/help.out" || { log "--help printed no usage:"; cat "$scratch/help.out" >&2; exit 1; }
grep -q "setting up: installing uv into .tools/" "$scratch/help.err" \
  || { log "the set-up did not run (was uv found somewhere?)"; cat "$scratch/help.err" >&2; exit 1; }
[ -x .tools/bin/uv ] || { log ".tools/bin/uv was not installed"; exit 1; }
[ -x .venv/bin/python ] || { log ".venv was not created"; exit 1; }
if ! run ./bin/latitude validate protocols/open-latitude.yaml >"$scratch/validate.out" 2>&1; then
  log "./bin/latitude validate failed after set-up:"
  cat "$scratch/validate.out" >&2
  exit 1
fi
log "ok: set up from nothing and ran --help and validate in $((SECONDS - start)) s (uv $(.tools/bin/uv --version | cut -d' ' -f2), $(.venv/bin/python -c 'import sys; print(sys.version.split()[0])'))"
