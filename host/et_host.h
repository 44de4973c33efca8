/* et_host.h - what the hosted layer shares: an error record that carries a one-line
 * message naming the file, the field and what was expected, beside the status code. */
#ifndef ET_HOST_H
#define ET_HOST_H

#include <stddef.h>
#include "et_status.h"

typedef struct et_error {
    et_status status;
    char msg[512];
} et_error;

/** Records a status and a printf-style message in @p err (which may be NULL) and
 *  returns the status, so callers can write `return et_error_set(err, ET_ERR_IO, ...)`. */
et_status et_error_set(et_error *err, et_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif /* ET_HOST_H */
