#include "tools/video_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "vd_config.h"

#if VD_HAVE_FFMPEG
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#endif

struct vd_video_writer {
    char *path, *part;
    int width, height, fps;
    int64_t frames;
    char codec_name[48];
    FILE *y4m;        /* the .y4m path */
    uint8_t *planes;  /* y4m: Y, U, V planes of one frame */
#if VD_HAVE_FFMPEG
    AVFormatContext *fmt;
    AVCodecContext *enc;
    AVStream *stream;
    AVFrame *frame;
    AVPacket *pkt;
    struct SwsContext *sws;
#endif
};

static int has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

const char *vd_video_writer_codec(const vd_video_writer *w) { return w->codec_name; }

/* ---- YUV4MPEG2 (4:4:4, BT.601 limited range) ---------------------------------------- */

static uint8_t clamp_u8(double v) { return (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v + 0.5)); }

static vd_status y4m_frame(vd_video_writer *w, const uint8_t *rgb)
{
    size_t n = (size_t)w->width * (size_t)w->height;
    uint8_t *Y = w->planes, *U = Y + n, *V = U + n;
    for (size_t i = 0; i < n; i++) {
        double r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
        Y[i] = clamp_u8(16 + 0.256788 * r + 0.504129 * g + 0.097906 * b);
        U[i] = clamp_u8(128 - 0.148223 * r - 0.290993 * g + 0.439216 * b);
        V[i] = clamp_u8(128 + 0.439216 * r - 0.367788 * g - 0.071427 * b);
    }
    if (fputs("FRAME\n", w->y4m) < 0 || fwrite(w->planes, 1, 3 * n, w->y4m) != 3 * n)
        return vd_error(VD_ERR_IO, "writing '%s' failed (disk full?)", w->part);
    return VD_OK;
}

/* ---- FFmpeg ---------------------------------------------------------------------- */

#if VD_HAVE_FFMPEG
static vd_status av_fail(vd_video_writer *w, int err, const char *what)
{
    char msg[128];
    av_strerror(err, msg, sizeof msg);
    return vd_error(VD_ERR_IO, "'%s': %s failed: %s", w->path, what, msg);
}

static vd_status av_open(vd_video_writer *w)
{
    /* The container follows the final name; the muxer writes (and, for
     * faststart, re-opens) the .part file. */
    av_log_set_level(AV_LOG_ERROR);
    const AVOutputFormat *ofmt = av_guess_format(NULL, w->path, NULL);
    int err = ofmt ? avformat_alloc_output_context2(&w->fmt, ofmt, NULL, w->part) : -1;
    if (err < 0 || !w->fmt)
        return vd_error(VD_ERR_INVALID_ARGUMENT,
                        "'%s': FFmpeg knows no container for this extension (use .mp4, .mkv, .mov or .y4m)", w->path);
    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    if (!codec)
        codec = avcodec_find_encoder(AV_CODEC_ID_H264);
    if (!codec)
        codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
    if (!codec)
        return vd_error(VD_ERR_UNSUPPORTED, "this FFmpeg has neither an H.264 nor an MPEG-4 encoder");
    snprintf(w->codec_name, sizeof w->codec_name, "%s (%s)", avcodec_get_name(codec->id), codec->name);
    w->stream = avformat_new_stream(w->fmt, NULL);
    w->enc = avcodec_alloc_context3(codec);
    w->frame = av_frame_alloc();
    w->pkt = av_packet_alloc();
    if (!w->stream || !w->enc || !w->frame || !w->pkt)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory setting up the encoder");
    w->enc->width = w->width;
    w->enc->height = w->height;
    w->enc->time_base = (AVRational){1, w->fps};
    w->enc->framerate = (AVRational){w->fps, 1};
    w->enc->pix_fmt = AV_PIX_FMT_YUV420P;
    w->enc->gop_size = 2 * w->fps;
    if (codec->id == AV_CODEC_ID_H264)
        av_opt_set(w->enc->priv_data, "crf", "18", 0);
    else
        w->enc->bit_rate = (int64_t)w->width * w->height * w->fps / 2; /* about 0.5 bit a pixel */
    if (w->fmt->oformat->flags & AVFMT_GLOBALHEADER)
        w->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((err = avcodec_open2(w->enc, codec, NULL)) < 0)
        return av_fail(w, err, "opening the encoder");
    if ((err = avcodec_parameters_from_context(w->stream->codecpar, w->enc)) < 0)
        return av_fail(w, err, "setting stream parameters");
    w->stream->time_base = w->enc->time_base;
    w->frame->format = w->enc->pix_fmt;
    w->frame->width = w->width;
    w->frame->height = w->height;
    if ((err = av_frame_get_buffer(w->frame, 0)) < 0)
        return av_fail(w, err, "allocating a frame");
    w->sws = sws_getContext(w->width, w->height, AV_PIX_FMT_RGB24, w->width, w->height, AV_PIX_FMT_YUV420P,
                            SWS_BICUBIC, NULL, NULL, NULL);
    if (!w->sws)
        return vd_error(VD_ERR_UNSUPPORTED, "no RGB → YUV 4:2:0 conversion for %dx%d", w->width, w->height);
    if ((err = avio_open(&w->fmt->pb, w->part, AVIO_FLAG_WRITE)) < 0)
        return av_fail(w, err, "creating the file");
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "movflags", "+faststart", 0);
    err = avformat_write_header(w->fmt, &opts);
    av_dict_free(&opts);
    if (err < 0)
        return av_fail(w, err, "writing the header");
    return VD_OK;
}

/* Send a frame (or NULL to flush) and write every packet that comes out. */
static vd_status av_encode(vd_video_writer *w, AVFrame *f)
{
    int err = avcodec_send_frame(w->enc, f);
    if (err < 0)
        return av_fail(w, err, "encoding");
    for (;;) {
        err = avcodec_receive_packet(w->enc, w->pkt);
        if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
            return VD_OK;
        if (err < 0)
            return av_fail(w, err, "encoding");
        if (w->pkt->duration == 0)
            w->pkt->duration = 1; /* one frame: lets MP4 give the last frame its length */
        av_packet_rescale_ts(w->pkt, w->enc->time_base, w->stream->time_base);
        w->pkt->stream_index = w->stream->index;
        err = av_interleaved_write_frame(w->fmt, w->pkt);
        if (err < 0)
            return av_fail(w, err, "writing");
    }
}

static void av_free_all(vd_video_writer *w)
{
    sws_freeContext(w->sws);
    av_frame_free(&w->frame);
    av_packet_free(&w->pkt);
    avcodec_free_context(&w->enc);
    if (w->fmt) {
        if (w->fmt->pb)
            avio_closep(&w->fmt->pb);
        avformat_free_context(w->fmt);
        w->fmt = NULL;
    }
}
#endif

/* ---- interface -------------------------------------------------------------------- */

vd_status vd_video_writer_open(const char *path, int width, int height, int fps, vd_video_writer **out)
{
    *out = NULL;
    if (width <= 0 || height <= 0 || width % 2 || height % 2 || fps <= 0 || fps > 1000)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "video %dx%d at %d fps: sizes must be even and positive", width, height,
                        fps);
    vd_video_writer *w = calloc(1, sizeof *w);
    if (!w)
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    w->width = width, w->height = height, w->fps = fps;
    w->path = strdup(path);
    w->part = malloc(strlen(path) + 6);
    if (!w->path || !w->part) {
        vd_video_writer_close(w, 0);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    }
    sprintf(w->part, "%s.part", path);
    vd_status st;
    if (has_suffix(path, ".y4m")) {
        snprintf(w->codec_name, sizeof w->codec_name, "y4m (uncompressed 4:4:4)");
        w->planes = malloc((size_t)width * (size_t)height * 3);
        w->y4m = fopen(w->part, "wb");
        if (!w->planes || !w->y4m)
            st = vd_error(VD_ERR_IO, "cannot create '%s'", w->part);
        else if (fprintf(w->y4m, "YUV4MPEG2 W%d H%d F%d:1 Ip A1:1 C444\n", width, height, fps) < 0)
            st = vd_error(VD_ERR_IO, "writing '%s' failed", w->part);
        else
            st = VD_OK;
    } else {
#if VD_HAVE_FFMPEG
        st = av_open(w);
#else
        st = vd_error(VD_ERR_UNSUPPORTED,
                      "'%s': this vdiff was built without FFmpeg, so it writes only .y4m files; install libavformat-dev, "
                      "libavcodec-dev and libswscale-dev and rebuild, or use the GStreamer plugin",
                      path);
#endif
    }
    if (st != VD_OK) {
        vd_video_writer_close(w, 0);
        return st;
    }
    *out = w;
    return VD_OK;
}

vd_status vd_video_writer_frame(vd_video_writer *w, const uint8_t *rgb)
{
    vd_status st;
    if (w->y4m) {
        st = y4m_frame(w, rgb);
    } else {
#if VD_HAVE_FFMPEG
        int err = av_frame_make_writable(w->frame);
        if (err < 0)
            return av_fail(w, err, "preparing a frame");
        const uint8_t *src[1] = {rgb};
        int stride[1] = {3 * w->width};
        sws_scale(w->sws, src, stride, 0, w->height, w->frame->data, w->frame->linesize);
        w->frame->pts = w->frames;
        st = av_encode(w, w->frame);
#else
        st = vd_error(VD_ERR_INTERNAL, "no encoder");
#endif
    }
    if (st == VD_OK)
        w->frames++;
    return st;
}

vd_status vd_video_writer_close(vd_video_writer *w, int keep)
{
    if (!w)
        return VD_OK;
    vd_status st = VD_OK;
    if (w->y4m) {
        if (fclose(w->y4m) != 0 && keep)
            st = vd_error(VD_ERR_IO, "closing '%s' failed (disk full?)", w->part);
    }
#if VD_HAVE_FFMPEG
    if (w->fmt && w->fmt->pb && keep) {
        st = av_encode(w, NULL);
        int err = av_write_trailer(w->fmt);
        if (st == VD_OK && err < 0)
            st = av_fail(w, err, "finishing the file");
    }
    av_free_all(w);
#endif
    if (w->part) {
        if (keep && st == VD_OK) {
            if (rename(w->part, w->path) != 0)
                st = vd_error(VD_ERR_IO, "cannot rename '%s' to '%s'", w->part, w->path);
        } else {
            remove(w->part);
        }
    }
    free(w->planes);
    free(w->path);
    free(w->part);
    free(w);
    return st;
}
