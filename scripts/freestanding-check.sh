#!/bin/sh
# freestanding-check.sh OBJ - fails unless OBJ's undefined symbols are a subset of
# memcpy, memset and memmove (the only calls core/ and compress/ may make).
obj="$1"
bad=$(nm -u "$obj" | awk '{print $2}' | grep -v -x -E 'memcpy|memset|memmove' || true)
if [ -n "$bad" ]; then
    echo "freestanding check FAILED: $obj needs symbols outside the core:" >&2
    echo "$bad" | sed 's/^/  /' >&2
    exit 1
fi
echo "freestanding check: core/ + compress/ need only: $(nm -u "$obj" | awk '{print $2}' | tr '\n' ' ')"
