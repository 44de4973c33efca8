#!/bin/sh
# ensure-deps.sh PKG... - installs the Debian packages among PKG that are missing.
# Used by the Makefile so that a fresh Debian machine needs nothing but make and gcc.
# Runs apt-get only when something is missing; as a non-root user it uses sudo if present.
set -e
multiarch=""
if [ "$1" = "--multiarch" ]; then multiarch=1; shift; fi
missing=""
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "edgetrain: installing missing Debian packages:$missing" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
if [ -n "$multiarch" ]; then
    # PKG:ARCH needs that architecture enabled in dpkg first
    for a in $(echo "$missing" | tr ' ' '\n' | sed -n 's/.*:\(.*\)/\1/p' | sort -u); do
        dpkg --print-foreign-architectures | grep -qx "$a" || $SUDO dpkg --add-architecture "$a"
    done
fi
$SUDO apt-get update -qq >&2 || true
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
