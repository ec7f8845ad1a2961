#!/bin/bash
# Build the C reference and fdsend-bench, then run every variant interleaved
# and print medians, ratios to C and (if strace is installed) system calls
# per message. Arguments go to fdsend-bench, e.g. bench/run.sh -rounds 31.
# See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d "${TMPDIR:-/tmp}/fdsend-bench.XXXXXX")
trap 'rm -rf "$out"' EXIT
gcc -O2 -Wall -o "$out/fdsend-ref" bench/c/ref.c
go build -o "$out/fdsend-bench" ./bench
"$out/fdsend-bench" -ref "$out/fdsend-ref" "$@"
