#!/bin/bash
# Runs every test: unit, fuzz seeds, in-process LSP, and the end-to-end
# tests with real editors and a real inference server (which skip with a
# reason when an editor or llama-server is not installed, unless
# GENLS_E2E_REQUIRED=1). Short fuzzing runs keep the fuzzers honest on new
# code.
set -euo pipefail
cd "$(dirname "$0")"
go vet ./...
GENLS_SKIP_REPORT=$(mktemp)
export GENLS_SKIP_REPORT
trap 'rm -f "$GENLS_SKIP_REPORT"' EXIT
go test -race -count=1 -timeout 20m ./...
if [ -s "$GENLS_SKIP_REPORT" ]; then
  echo "Skipped end-to-end tests (install the editors with editors/ci-setup.sh and editors/vscode/ci-setup.sh,"
  echo "and llama-server with stream/llamatest/ci-setup.sh):"
  sort -u "$GENLS_SKIP_REPORT" | sed 's/^/  /'
fi
# Execution counts, not durations: Go 1.26's fuzz coordinator can report a
# spurious "context deadline exceeded" when a -fuzztime duration expires on a
# busy machine (golang/go#75804); a count has no deadline to race.
for target in "FuzzSSEData ./stream 20000x" "FuzzPipeline ./stream 100000x" \
  "FuzzParsers ./stream 50000x" "FuzzServerMessages ./lsp 5000x" \
  "FuzzLineEndings ./lsp 2000x" "FuzzPosition ./lsp 5000x"; do
  set -- $target
  go test -run '^$' -fuzz "^$1\$" -fuzztime "$3" -timeout 5m "$2"
done
