/* Setting the thread's error message (internal side of vdiff/status.h). */
#ifndef VD_CORE_ERROR_H
#define VD_CORE_ERROR_H

#include "vdiff/status.h"

#if defined(__GNUC__)
#define VD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define VD_PRINTF(a, b)
#endif

/* Record a message for this thread and return `status` unchanged, so a
 * failure reads: return vd_error(VD_ERR_FORMAT, "...", ...); */
vd_status vd_error(vd_status status, const char *fmt, ...) VD_PRINTF(2, 3);

/* Prefix the current message with context ("loading 'x': " + message) and
 * return `status`.  Use on the way up when a callee already set one. */
vd_status vd_error_context(vd_status status, const char *fmt, ...) VD_PRINTF(2, 3);

/* Propagate a failing status to the caller. */
#define VD_TRY(expr)                       \
    do {                                   \
        vd_status vd_try_s_ = (expr);      \
        if (vd_try_s_ != VD_OK)            \
            return vd_try_s_;              \
    } while (0)

#endif
