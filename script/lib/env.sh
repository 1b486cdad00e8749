# Sourced by every script: repo root, cache dir, and the project's Node (24) first on PATH.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export TAG_CONNECTOR_CACHE="${TAG_CONNECTOR_CACHE:-$HOME/.cache/tag-connector}"
# A function, because on a fresh machine bootstrap installs Node 24 after this file was sourced: every
# script calls it again once bootstrap has run (else the rest of the script ran on the machine's Node).
use_project_node() {
  local dir
  dir="$(ls -d "$TAG_CONNECTOR_CACHE"/node-24.* 2>/dev/null | sort -V | tail -1 || true)"
  if [ -n "$dir" ] && [ -x "$dir/bin/node" ] && [[ ":$PATH:" != *":$dir/bin:"* ]]; then
    export PATH="$dir/bin:$PATH"
  fi
  NODE_DIR="$dir"
}
use_project_node
export PATH="$ROOT/node_modules/.bin:$PATH"
cd "$ROOT"

node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=15)?0:1)'
}
say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'tag-connector: %s\n' "$*" >&2; exit 1; }

# Builds dist/ when it is missing or older than anything in src/ (a warm run skips tsc).
build_if_stale() {
  local cli="$ROOT/dist/cli/main.js"
  if [ ! -f "$cli" ] || [ -n "$(find "$ROOT/src" -newer "$cli" -print -quit)" ]; then
    (cd "$ROOT" && npm run build --silent) >&2
  else
    build_console_if_stale
  fi
}

# The console alone (console/ -> dist/console, esbuild, under a second), for what runs from src/.
build_console_if_stale() {
  local page="$ROOT/dist/console/extract-tasks.html"
  if [ ! -f "$page" ] || [ -n "$(find "$ROOT/console" -newer "$page" -print -quit)" ]; then
    (cd "$ROOT" && npm run build:console --silent) >&2
  fi
}
