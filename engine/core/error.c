#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* One message per thread: callers on different threads never see each
 * other's errors. */
static _Thread_local char vd_message[2048];

const char *vd_status_name(vd_status status)
{
    switch (status) {
    case VD_OK: return "ok";
    case VD_ERR_INVALID_ARGUMENT: return "invalid argument";
    case VD_ERR_NOT_FOUND: return "not found";
    case VD_ERR_IO: return "I/O error";
    case VD_ERR_FORMAT: return "format error";
    case VD_ERR_UNSUPPORTED: return "unsupported";
    case VD_ERR_SHAPE: return "shape error";
    case VD_ERR_OUT_OF_MEMORY: return "out of memory";
    case VD_ERR_DEVICE: return "device error";
    case VD_ERR_CANCELLED: return "cancelled";
    case VD_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *vd_last_error(void) { return vd_message; }

void vd_clear_error(void) { vd_message[0] = '\0'; }

vd_status vd_error(vd_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vd_message, sizeof vd_message, fmt, ap);
    va_end(ap);
    return status;
}

vd_status vd_error_context(vd_status status, const char *fmt, ...)
{
    char prefix[1024];
    char old[sizeof vd_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, vd_message, sizeof old);
    snprintf(vd_message, sizeof vd_message, "%s%s", prefix, old);
    return status;
}
