// Command fdsend-bench measures passing descriptors with fdsend beside the
// standard library and a C reference (bench/c/ref.c), two processes over a
// SOCK_STREAM socket pair per variant, interleaved over several rounds, and
// prints each variant's median time per message and its ratio to C. Run it
// through bench/run.sh, which builds both; docs/benchmarks.md shows a run.
//
// It is Linux-only and has no tests, so go test ./... does not run it.
package main
