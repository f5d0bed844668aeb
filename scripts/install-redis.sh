#!/usr/bin/env bash
# Installs Debian's or Ubuntu's redis-server for the tests, without starting the packaged service:
# the tests start their own on a free loopback port and stop it, so nothing is left listening.
# Run as root (CI) or through password-less sudo (scripts/ensure-redis.mjs decides which).
set -euo pipefail
made_policy=""
# invoke-rc.d asks policy-rc.d whether a service may start; 101 means no.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  made_policy=1
fi
cleanup() { if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
