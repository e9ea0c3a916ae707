#!/bin/bash
# Runs every test: unit, fuzz seeds, in-process LSP, and the real-editor
# end-to-end tests (which skip with a reason when an editor is not installed,
# unless GENLS_E2E_REQUIRED=1). Short fuzzing runs keep the fuzzers honest on
# new code.
set -euo pipefail
cd "$(dirname "$0")"
go vet ./...
go test -race -count=1 -timeout 20m ./...
for target in "FuzzSSEData ./stream" "FuzzPipeline ./stream" "FuzzTGIFastPath ./stream" "FuzzServerMessages ./lsp"; do
  set -- $target
  go test -run '^$' -fuzz "^$1\$" -fuzztime 10s "$2"
done
