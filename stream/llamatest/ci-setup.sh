#!/bin/bash
# Builds llama.cpp's llama-server and writes tiny random-weight models that
# carry real tokenizers, for the tests that meet a real inference server
# (stream/llamatest). Debian 12, as root, from Debian's apt and the npm
# registry only. Idempotent and cached: a second run checks a stamp and
# builds nothing.
#
#   bash stream/llamatest/ci-setup.sh && GENLS_E2E_REQUIRED=1 go test ./...
#
# Layout (override the directory with GENLS_LLAMA_DIR; the Go tests read the
# same variable):
#   $DIR/bin/llama-server           llama.cpp's libraries linked in, portable:
#                                   AVX2 at most (GGML_NATIVE=OFF), not -march=native
#   $DIR/models/qwen2-tiny.gguf     Qwen2's tokenizer and ChatML template
#   $DIR/models/starcoder-tiny.gguf StarCoder's tokenizer, with FIM tokens
#   $DIR/vocab, $DIR/gguf-py        what tinymodel.py needs from the source tree
#
# The source is the git bundle inside the npm package node-llama-cpp, which
# pins a llama.cpp commit; the build takes 13-23 minutes on 2 cores. Set
# GENLS_LLAMA_JOBS to limit the build's parallelism (default: all cores).
set -euo pipefail

DIR=${GENLS_LLAMA_DIR:-/opt/genls-llama}
NODE_LLAMA_CPP=3.22.1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
JOBS=${GENLS_LLAMA_JOBS:-$(nproc)}
# Everything that decides the binary; a change rebuilds it.
CMAKE_FLAGS=(-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF
  -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF)
BUILD_STAMP="node-llama-cpp@$NODE_LLAMA_CPP ${CMAKE_FLAGS[*]}"
VOCABS="qwen2 starcoder"

mkdir -p "$DIR"
# One set-up at a time per directory.
exec 9>"$DIR/.lock"
flock 9

start=$(date +%s)
step() { echo "llama-setup: $1 ($(( $(date +%s) - start ))s)"; }

# 1. Debian packages: the compiler and CMake for llama-server, NumPy and
# PyYAML for llama.cpp's gguf-py, npm to fetch the source.
need=""
pkgs="cmake g++ make git python3 python3-numpy python3-yaml"
command -v npm >/dev/null || pkgs="$pkgs npm"
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
  apt_install() {
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends $need
  }
  if ! apt_install >"$DIR/apt.log" 2>&1; then
    apt-get -o DPkg::Lock::Timeout=900 update >>"$DIR/apt.log" 2>&1
    apt_install >>"$DIR/apt.log" 2>&1 || { cat "$DIR/apt.log"; exit 1; }
  fi
fi
step "apt packages present"

# 2. llama-server, and the vocabularies and gguf-py kept from its tree.
if [ "$(cat "$DIR/bin/.stamp" 2>/dev/null)" != "$BUILD_STAMP" ] || [ ! -x "$DIR/bin/llama-server" ]; then
  work=$DIR/work
  rm -rf "$work"
  mkdir -p "$work"
  (cd "$work" && npm pack --silent --cache "$work/npm-cache" "node-llama-cpp@$NODE_LLAMA_CPP" >/dev/null)
  tar -xzf "$work/node-llama-cpp-$NODE_LLAMA_CPP.tgz" -C "$work" package/llama/gitRelease.bundle
  git clone --quiet "$work/package/llama/gitRelease.bundle" "$work/llama.cpp" 2>/dev/null
  step "llama.cpp $(git -C "$work/llama.cpp" rev-parse --short HEAD) from node-llama-cpp@$NODE_LLAMA_CPP"

  rm -rf "$DIR/vocab" "$DIR/gguf-py"
  mkdir -p "$DIR/vocab"
  for v in $VOCABS; do
    cp "$work/llama.cpp/models/ggml-vocab-$v.gguf" "$DIR/vocab/"
  done
  cp -r "$work/llama.cpp/gguf-py" "$DIR/gguf-py"

  cmake -S "$work/llama.cpp" -B "$work/build" "${CMAKE_FLAGS[@]}" >"$DIR/build.log" 2>&1 ||
    { tail -50 "$DIR/build.log"; exit 1; }
  step "configured; building llama-server with $JOBS jobs"
  cmake --build "$work/build" --target llama-server -j "$JOBS" >>"$DIR/build.log" 2>&1 ||
    { tail -50 "$DIR/build.log"; exit 1; }
  mkdir -p "$DIR/bin"
  install -m 755 "$work/build/bin/llama-server" "$DIR/bin/llama-server"
  echo "$BUILD_STAMP" >"$DIR/bin/.stamp"
  rm -rf "$work" "$DIR/models"
  step "llama-server built"
fi
"$DIR/bin/llama-server" --version 2>&1 | grep -m1 version || true

# 3. The models, rewritten when the generator changes (seconds).
MODEL_STAMP="$(sha256sum "$HERE/tinymodel.py" | cut -d' ' -f1) $VOCABS"
if [ "$(cat "$DIR/models/.stamp" 2>/dev/null)" != "$MODEL_STAMP" ]; then
  rm -rf "$DIR/models.tmp"
  mkdir -p "$DIR/models.tmp"
  for v in $VOCABS; do
    PYTHONPATH=$DIR/gguf-py /usr/bin/python3 "$HERE/tinymodel.py" \
      "$DIR/vocab/ggml-vocab-$v.gguf" "$DIR/models.tmp/$v-tiny.gguf"
  done
  echo "$MODEL_STAMP" >"$DIR/models.tmp/.stamp"
  rm -rf "$DIR/models"
  mv "$DIR/models.tmp" "$DIR/models"
fi
step "models: $(cd "$DIR/models" && echo *.gguf); cache $(du -sh "$DIR" | cut -f1)"
