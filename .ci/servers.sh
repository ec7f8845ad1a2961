#!/usr/bin/env bash
# Installs the third-party servers that tests run under `fdsend activate`
# (gunicorn, lighttpd) and that `fdsend adopt` takes sockets from (nginx)
# from Debian's packages, if they are missing. Idempotent;
# the packages' own services are kept from starting (policy-rc.d answers
# "not allowed" for the duration of the install). Needs root to install.
set -euo pipefail

need=()
command -v gunicorn >/dev/null 2>&1 || need+=(gunicorn)
command -v lighttpd >/dev/null 2>&1 || need+=(lighttpd)
command -v nginx >/dev/null 2>&1 || need+=(nginx)
if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "servers.sh: ${need[*]} missing, and installing them needs root" >&2
	exit 1
fi

policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# servers.sh: no service starts during the install\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	made_policy=1
fi
cleanup() {
	if [ "$made_policy" = 1 ]; then
		rm -f "$policy"
	fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
echo "servers.sh: installing ${need[*]}"
if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >/tmp/servers-apt.log 2>&1; then
	apt-get update -qq >>/tmp/servers-apt.log 2>&1
	apt-get install -y -qq --no-install-recommends "${need[@]}" >>/tmp/servers-apt.log 2>&1 || {
		cat /tmp/servers-apt.log >&2
		exit 1
	}
fi
command -v gunicorn lighttpd nginx
