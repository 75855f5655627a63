/* Status values and error messages of libvdiff.
 *
 * Every fallible call returns a vd_status.  On failure it also leaves a
 * human-readable message for the calling thread, readable with
 * vd_last_error(): what failed, on which file or tensor, and what to do.
 * The engine never aborts, exits or prints on bad input. */
#ifndef VDIFF_STATUS_H
#define VDIFF_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vd_status {
    VD_OK = 0,
    VD_ERR_INVALID_ARGUMENT, /* a bad setting or parameter */
    VD_ERR_NOT_FOUND,        /* a file, tensor or key that does not exist */
    VD_ERR_IO,               /* reading or writing failed */
    VD_ERR_FORMAT,           /* a corrupt, truncated or malformed file */
    VD_ERR_UNSUPPORTED,      /* well-formed, but not something we run */
    VD_ERR_SHAPE,            /* a tensor of the wrong shape or dtype */
    VD_ERR_OUT_OF_MEMORY,    /* host or device memory exhausted */
    VD_ERR_DEVICE,           /* GPU or driver missing or failing */
    VD_ERR_CANCELLED,        /* the request was cancelled */
    VD_ERR_INTERNAL          /* a bug: please report it */
} vd_status;

/* A short constant name for a status ("format error", ...). */
const char *vd_status_name(vd_status status);

/* The message left by the last failing call on this thread ("" if none).
 * The pointer stays valid until the next failing call on this thread. */
const char *vd_last_error(void);

/* Forget the last message on this thread. */
void vd_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
