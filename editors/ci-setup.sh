#!/bin/bash
# Installs what the Neovim, Emacs and snippet tests under editors/ need on a
# fresh Debian 12 machine, as root, from Debian's apt only. Idempotent: when
# everything is there it installs nothing.
#
#   bash editors/ci-setup.sh && GENLS_E2E_REQUIRED=1 go test ./...
#
# neovim       editors/neovim (Debian 12 ships 0.7.2)
# emacs-nox    editors/emacs  (Emacs 28.2)
# elpa-eglot   editors/emacs  (eglot 1.9, in /usr/share/emacs/site-lisp/elpa)
# python3      editors/helix, editors/zed (tomllib parses the TOML snippets)
# VS Code has its own script: editors/vscode/ci-setup.sh.
set -euo pipefail

pkgs="neovim emacs-nox elpa-eglot python3"
need=""
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
  export DEBIAN_FRONTEND=noninteractive
  # Wait for another installer instead of failing on the dpkg lock.
  apt_get() { apt-get -o DPkg::Lock::Timeout=900 "$@"; }
  # shellcheck disable=SC2086
  apt_get install -y --no-install-recommends $need || {
    apt_get update
    # shellcheck disable=SC2086
    apt_get install -y --no-install-recommends $need
  }
fi

nvim --version | head -1
emacs --version | head -1
ls -d /usr/share/emacs/site-lisp/elpa/eglot-*/eglot.el
python3 -c 'import tomllib' || { echo "ci-setup: python3 has no tomllib (need 3.11+)" >&2; exit 1; }
