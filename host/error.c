/* error.c - the host's error record. */
#include <stdarg.h>
#include <stdio.h>
#include "et_host.h"

et_status et_error_set(et_error *err, et_status s, const char *fmt, ...)
{
    va_list ap;
    if (!err) return s;
    err->status = s;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return s;
}
