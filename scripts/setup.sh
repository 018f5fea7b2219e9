#!/usr/bin/env bash
# npm run setup — install everything Tessera needs, then build. Idempotent: a second run only checks.
#   1. Debian/Ubuntu system packages (apt-get; as root or with passwordless sudo)
#   2. npm ci (skipped when node_modules already matches package-lock.json; --force reinstalls)
#   3. the Electron binary, when its download host is reachable (optional: Tessera runs headless without it)
#   4. npm run build (skipped with TESSERA_SETUP_BUILD=0, e.g. in CI where `npm test` builds anyway)
set -euo pipefail
cd "$(dirname "$0")/.."

FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

# System packages Tessera uses. chromium: end-to-end tests and kiosk browsers. postgresql: the cloud's tests run
# against a throwaway PostgreSQL cluster (test/helpers/postgres.ts); the cloud itself also runs on embedded PGlite.
# nats-server: distributed scenario runs over JetStream (issue 18); tests start a throwaway one (test/helpers/nats.ts).
SYSTEM_PACKAGES=(chromium espeak-ng pocketsphinx pocketsphinx-en-us sox b3sum openssl jq unzip python3 postgresql nats-server)

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
warn() { printf '\033[1;33m[setup] warning:\033[0m %s\n' "$*" >&2; }

install_system_packages() {
  if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
    warn "not a Debian/Ubuntu system: install these yourself if you need them: ${SYSTEM_PACKAGES[*]}"
    return 0
  fi
  local missing=()
  for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "system packages present: ${SYSTEM_PACKAGES[*]}"
    return 0
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo)
    else
      warn "missing system packages: ${missing[*]}. Run as root or with sudo: sudo apt-get install -y ${missing[*]}"
      warn "continuing: Tessera's core works without them (see: npx tessera doctor)."
      return 0
    fi
  fi
  say "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_node_modules() {
  local stamp=node_modules/.tessera-setup-lock
  if [ "$FORCE" -eq 0 ] && [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
    say "node_modules matches package-lock.json (npm run setup -- --force reinstalls)"
    return 0
  fi
  say "npm ci (native modules better-sqlite3 and isolated-vm build from source: about 2 minutes)"
  # The Electron binary comes from outside the npm registry; the install must not depend on it. Nor must
  # onnxruntime-node's GPU build: package.json allowScripts denies its postinstall where npm reads allowScripts,
  # and ONNXRUNTIME_NODE_INSTALL=skip (read by that script itself, so npm prints no "unknown config" warning,
  # unlike an .npmrc key) covers an npm that runs it anyway (npm 10, Node 20's own).
  ONNXRUNTIME_NODE_INSTALL=skip ELECTRON_SKIP_BINARY_DOWNLOAD=1 npm ci --no-audit --no-fund
  cp package-lock.json "$stamp"
}

fetch_electron_binary() {
  if [ -n "${CI:-}" ] || [ -n "${TESSERA_SKIP_ELECTRON:-}" ]; then
    say "Electron binary: not fetched (CI or TESSERA_SKIP_ELECTRON); tessera start runs headless"
    return 0
  fi
  if node -e "process.exit(require('fs').existsSync(require('electron')) ? 0 : 1)" 2>/dev/null; then
    say "Electron binary present"
    return 0
  fi
  if [ -f node_modules/electron/install.js ] && timeout 180 node node_modules/electron/install.js >/dev/null 2>&1; then
    say "Electron binary installed"
  else
    say "Electron binary unavailable (download host unreachable); tessera start runs headless and serves the UI over HTTP"
  fi
}

# Debian puts initdb and pg_ctl in /usr/lib/postgresql/<version>/bin, not on PATH: the tests look there too.
check_postgres() {
  local initdb
  initdb=$(command -v initdb 2>/dev/null || ls -1d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$initdb" ] && [ -x "$initdb" ]; then
    say "PostgreSQL for the cloud's tests: $(dirname "$initdb")"
  else
    warn "PostgreSQL (initdb) not found: the cloud's PostgreSQL tests cannot run. Install it: apt-get install postgresql"
  fi
}

install_system_packages
check_postgres
install_node_modules
fetch_electron_binary
if [ "${TESSERA_SETUP_BUILD:-1}" = "1" ]; then
  say "building (electron-vite: main, preload, renderer)"
  npm run build --silent
else
  say "not building (TESSERA_SETUP_BUILD=0): run npm run build before npm start"
fi
say "done. Start with: npm start   ·   check this machine with: npx tessera doctor"
