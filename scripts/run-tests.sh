#!/bin/sh
# run-tests.sh LABEL CLI TEST... - runs each Check suite from the repository root
# (through $ET_RUN, e.g. qemu-aarch64, when set),
# then prints one closing line 'N passed, N failed' over all checks of all suites.
label="$1"; shift
cli="$1"; shift
export ET_CLI="$cli"            # the CLI binary the CLI tests drive
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-600}
# Check's fork-per-test mode hangs under qemu-user; emulated runs use one process
# and one thread: spinning pool workers crawl under emulation
[ -n "$ET_RUN" ] && export CK_FORK=no ET_EMULATED=1 EDGETRAIN_THREADS=1
pass=0; fail=0; failed_suites=""
for t in "$@"; do
    out=$($ET_RUN "$t" 2>&1); rc=$?   # ET_RUN: an emulator prefix for cross builds
    echo "$out" | grep -v '^Running suite' 
    line=$(echo "$out" | grep -E 'Checks: [0-9]+' | tail -n 1)
    n=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
    f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+), Errors: ([0-9]+).*/\1 \2/' | awk '{print $1+$2}')
    [ -z "$n" ] && { n=1; f=1; }
    pass=$((pass + n - f)); fail=$((fail + f))
    if [ $rc -ne 0 ] || [ "$f" -ne 0 ]; then failed_suites="$failed_suites $(basename $t)"; fi
done
echo "$label: $pass passed, $fail failed"
if [ -n "$failed_suites" ]; then echo "$label: failing suites:$failed_suites"; exit 1; fi
exit 0
