/* status.c - names for status codes. */
#include "et_status.h"

const char *et_status_str(et_status s)
{
    switch (s) {
    case ET_OK: return "ok";
    case ET_ERR_NOMEM: return "out of memory (arena exhausted)";
    case ET_ERR_INVALID: return "invalid argument";
    case ET_ERR_RANGE: return "value out of range";
    case ET_ERR_FORMAT: return "bad format (magic, version or layout)";
    case ET_ERR_TRUNCATED: return "truncated data";
    case ET_ERR_CRC: return "checksum mismatch";
    case ET_ERR_IO: return "input/output error";
    case ET_ERR_UNSUPPORTED: return "not supported";
    case ET_ERR_DEVICE: return "device missing or failed";
    case ET_ERR_STATE: return "call made in the wrong state";
    }
    return "unknown status";
}
