/* vdiffsrc: a text-to-video source running Wan 2.1/2.2 diffusion models
 * through libvdiff.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef __GST_VDIFF_SRC_H__
#define __GST_VDIFF_SRC_H__

#include <gst/gst.h>
#include <gst/base/gstpushsrc.h>

G_BEGIN_DECLS

/**
 * GstVdiffSampler:
 * @GST_VDIFF_SAMPLER_UNIPC: UniPC multistep (bh2), the reference sampler of Wan
 * @GST_VDIFF_SAMPLER_EULER: flow-matching Euler
 *
 * The sampler that integrates the denoising ODE.
 *
 * Since: 0.1
 */
typedef enum
{
  GST_VDIFF_SAMPLER_UNIPC = 0,
  GST_VDIFF_SAMPLER_EULER = 1,
} GstVdiffSampler;

#define GST_TYPE_VDIFF_SAMPLER (gst_vdiff_sampler_get_type ())
GType gst_vdiff_sampler_get_type (void);

#define GST_TYPE_VDIFF_SRC (gst_vdiff_src_get_type ())
G_DECLARE_FINAL_TYPE (GstVdiffSrc, gst_vdiff_src, GST, VDIFF_SRC, GstPushSrc)

GST_ELEMENT_REGISTER_DECLARE (vdiffsrc);

G_END_DECLS

#endif /* __GST_VDIFF_SRC_H__ */
