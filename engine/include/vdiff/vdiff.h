/* libvdiff: latent video diffusion (Wan 2.1 / 2.2) in C.
 *
 * vdiff/status.h    status values and error messages
 * vdiff/pipeline.h  text-to-video: open models, generate clips, receive frames */
#ifndef VDIFF_VDIFF_H
#define VDIFF_VDIFF_H

#include "vdiff/pipeline.h"
#include "vdiff/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* "0.1.0" */
const char *vd_version(void);

#ifdef __cplusplus
}
#endif
#endif
