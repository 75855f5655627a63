/* The vdiff GStreamer plugin: registers its elements.
 *
 * SPDX-License-Identifier: MIT
 */

/**
 * SECTION:plugin-vdiff
 *
 * Elements that generate video with latent video-diffusion models (Wan 2.1
 * and 2.2) through libvdiff, on the CPU or on CUDA GPUs, with the model's
 * weights spread over several devices when it does not fit on one.
 *
 * Since: 0.1
 */

#include <gst/gst.h>

#include "gstvdiffsrc.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  gboolean ret = FALSE;

  ret |= GST_ELEMENT_REGISTER (vdiffsrc, plugin);

  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR,
    GST_VERSION_MINOR,
    vdiff,
    "Text-to-video generation with latent video-diffusion models (Wan 2.1/2.2)",
    plugin_init, VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
