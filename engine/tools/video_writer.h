/* Writing generated frames to a video file: MP4/MKV/MOV through FFmpeg's
 * libavformat/libavcodec (H.264 when an encoder is present, MPEG-4 Part 2
 * otherwise), or YUV4MPEG2 (.y4m) with no dependency at all. */
#ifndef VD_TOOLS_VIDEO_WRITER_H
#define VD_TOOLS_VIDEO_WRITER_H

#include <stdint.h>

#include "vdiff/status.h"

typedef struct vd_video_writer vd_video_writer;

/* Open `path` for width × height frames at fps; the container follows the
 * extension.  Written to PATH.part and renamed by close, so an interrupted
 * run leaves no half file under the final name. */
vd_status vd_video_writer_open(const char *path, int width, int height, int fps, vd_video_writer **out);

/* Append one packed RGB frame (3·width bytes a row). */
vd_status vd_video_writer_frame(vd_video_writer *w, const uint8_t *rgb);

/* Flush, finish the container and rename into place; frees the writer.
 * `keep` = 0 discards the file (after a failure or cancellation). */
vd_status vd_video_writer_close(vd_video_writer *w, int keep);

/* The codec chosen ("h264 (libx264)", "mpeg4", "y4m"). */
const char *vd_video_writer_codec(const vd_video_writer *w);

#endif
