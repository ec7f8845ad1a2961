#!/usr/bin/env bash
# Installs strace, which bench/run.sh uses to count system calls per
# message, from Debian's packages if it is missing. Idempotent; needs root
# to install. bench/run.sh runs without it (and says so).
set -euo pipefail
if command -v strace >/dev/null 2>&1; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "tools.sh: strace is missing, and installing it needs root" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends strace >/dev/null 2>&1 || {
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends strace
}
command -v strace
