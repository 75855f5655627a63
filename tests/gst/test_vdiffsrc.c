/* GstCheck tests of vdiffsrc on the CPU backend with tiny random-weight
 * models, written by `vdiff mkmodel` into a temporary directory before the
 * tests run (VDIFF_TOOL names the tool).
 *
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <gst/app/gstappsink.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>

#include "vdiff/pipeline.h"
#include "vdiff/status.h"

#ifndef VDIFF_TEST_HAVE_CUDA
#define VDIFF_TEST_HAVE_CUDA 0
#endif

#define PROMPT "a red fox runs through fresh snow"
#define W 64
#define H 48
#define FRAMES 5
#define STEPS 2
#define FRAME_DURATION (GST_SECOND / 16)
/* Generous: valgrind runs the tiny models 50 times slower. */
#define WAIT_TIMEOUT (600 * GST_SECOND)

static gchar *models_dir;
static gchar *dit_path, *vae_path, *te_path;
static vd_pipeline_info model_info;

/* ------------------------------------------------------------------------ */
/* Tiny models */

static gboolean
mkmodel (const gchar * tool, const gchar * arch, const gchar * out,
    const gchar * extra1, const gchar * extra2)
{
  const gchar *argv[16];
  gint n = 0, status = 0;
  gchar *err = NULL;
  GError *error = NULL;
  gboolean ok;

  argv[n++] = tool;
  argv[n++] = "mkmodel";
  argv[n++] = "--arch";
  argv[n++] = arch;
  argv[n++] = "--preset";
  argv[n++] = "tiny";
  argv[n++] = "--dtype";
  argv[n++] = "f32";
  if (extra1)
    argv[n++] = extra1;
  if (extra2)
    argv[n++] = extra2;
  argv[n++] = "-o";
  argv[n++] = out;
  argv[n] = NULL;

  ok = g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL,
      NULL, NULL, NULL, &err, &status, &error);
  if (!ok) {
    g_printerr ("could not run %s: %s\n", tool, error->message);
    g_error_free (error);
  } else if (!g_spawn_check_wait_status (status, NULL)) {
    g_printerr ("%s mkmodel --arch %s failed:\n%s\n", tool, arch, err);
    ok = FALSE;
  }
  g_free (err);
  return ok;
}

static gboolean
make_models (void)
{
  const gchar *tool = g_getenv ("VDIFF_TOOL");
  gchar *tokenizer;
  vd_pipeline_options opt = vd_pipeline_options_default ();
  vd_pipeline *p;
  gboolean ok;

  if (tool == NULL) {
    g_printerr ("VDIFF_TOOL is not set (the path of the vdiff program)\n");
    return FALSE;
  }
  models_dir = g_dir_make_tmp ("vdiffsrc-test-XXXXXX", NULL);
  if (models_dir == NULL)
    return FALSE;
  dit_path = g_build_filename (models_dir, "dit.safetensors", NULL);
  vae_path = g_build_filename (models_dir, "vae.safetensors", NULL);
  te_path = g_build_filename (models_dir, "umt5.safetensors", NULL);
  tokenizer = g_build_filename (VD_TEST_DATA_DIR, "tokenizer",
      "vdiff-small.model", NULL);

  ok = mkmodel (tool, "wan21-t2v", dit_path, NULL, NULL)
      && mkmodel (tool, "wan-vae", vae_path, NULL, NULL)
      && mkmodel (tool, "umt5", te_path, "--tokenizer", tokenizer);
  g_free (tokenizer);
  if (!ok)
    return FALSE;

  /* What the element should fixate to. */
  opt.dit = dit_path;
  opt.vae = vae_path;
  opt.text_encoder = te_path;
  if (vd_pipeline_open (&opt, &p) != VD_OK) {
    g_printerr ("the tiny models do not open: %s\n", vd_last_error ());
    return FALSE;
  }
  vd_pipeline_get_info (p, &model_info);
  vd_pipeline_close (p);
  return TRUE;
}

static void
remove_models (void)
{
  if (models_dir == NULL)
    return;
  g_unlink (dit_path);
  g_unlink (vae_path);
  g_unlink (te_path);
  g_rmdir (models_dir);
}

/* ------------------------------------------------------------------------ */
/* Helpers */

/* Give @src the tiny models and a prompt, unless it names its own. */
static void
set_models (GstElement * src)
{
  const gchar *props[] = { "model", "vae", "text-encoder", "prompt" };
  const gchar *values[] = { dit_path, vae_path, te_path, PROMPT };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (props); i++) {
    gchar *v = NULL;

    g_object_get (src, props[i], &v, NULL);
    if (v == NULL || *v == '\0')
      g_object_set (src, props[i], values[i], NULL);
    g_free (v);
  }
}

/* A harness around one vdiffsrc with the tiny models, FRAMES frames and
 * STEPS steps; @caps constrains its output. */
static GstHarness *
harness_new (const gchar * caps)
{
  GstHarness *h = gst_harness_new_with_padnames ("vdiffsrc", NULL, "src");

  set_models (h->element);
  g_object_set (h->element, "frames", FRAMES, "steps", STEPS, NULL);
  if (caps)
    gst_harness_set_sink_caps_str (h, caps);
  return h;
}

/* A pipeline from @desc; every vdiffsrc in it gets the tiny models. */
static GstElement *
pipeline_new (const gchar * desc)
{
  GError *error = NULL;
  GstElement *pipeline = gst_parse_launch (desc, &error);
  GstIterator *it;
  GValue item = G_VALUE_INIT;

  fail_unless (pipeline != NULL, "could not parse '%s': %s", desc,
      error ? error->message : "?");
  g_clear_error (&error);

  it = gst_bin_iterate_recurse (GST_BIN (pipeline));
  while (gst_iterator_next (it, &item) == GST_ITERATOR_OK) {
    GstElement *e = g_value_get_object (&item);
    GstElementFactory *f = gst_element_get_factory (e);

    if (f && g_str_equal (GST_OBJECT_NAME (f), "vdiffsrc"))
      set_models (e);
    g_value_reset (&item);
  }
  g_value_unset (&item);
  gst_iterator_free (it);
  return pipeline;
}

/* Wait for EOS or an error; returns the message (unref it). */
static GstMessage *
wait_eos_or_error (GstElement * pipeline, GstClockTime timeout)
{
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, timeout,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);

  gst_object_unref (bus);
  return msg;
}

#define fail_unless_equals_int_with_message(a, b, m) \
  fail_unless ((a) == (b), "%d != %d: %s", (int) (a), (int) (b), (m))

static void
assert_error_message (GstMessage * msg, GQuark domain, gint code,
    const gchar * substring)
{
  GError *err = NULL;
  gchar *debug = NULL;

  fail_unless (msg != NULL, "no error message");
  fail_unless_equals_int (GST_MESSAGE_TYPE (msg), GST_MESSAGE_ERROR);
  gst_message_parse_error (msg, &err, &debug);
  GST_INFO ("error: %s (%s)", err->message, debug);
  fail_unless (err->domain == domain, "domain %s, expected %s: %s",
      g_quark_to_string (err->domain), g_quark_to_string (domain),
      err->message);
  fail_unless_equals_int_with_message (err->code, code, err->message);
  if (substring)
    fail_unless (strstr (err->message, substring) != NULL,
        "'%s' not in the error message '%s'", substring, err->message);
  g_error_free (err);
  g_free (debug);
}

/* Start a pipeline whose vdiffsrc must fail in start(); check the error. */
static void
expect_start_error (const gchar * props, GQuark domain, gint code,
    const gchar * substring)
{
  gchar *desc = g_strdup_printf ("vdiffsrc name=src frames=%d steps=%d %s ! "
      "video/x-raw,width=%d,height=%d ! fakesink", FRAMES, STEPS, props, W, H);
  GstElement *pipeline = pipeline_new (desc);
  GstBus *bus = gst_element_get_bus (pipeline);
  GstStateChangeReturn ret;
  GstMessage *msg;

  ret = gst_element_set_state (pipeline, GST_STATE_PAUSED);
  fail_unless_equals_int (ret, GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_timed_pop_filtered (bus, 0, GST_MESSAGE_ERROR);
  assert_error_message (msg, domain, code, substring);
  gst_message_unref (msg);

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
  g_free (desc);
}

/* Pull @n buffers and then EOS from a harness; returns the buffers. */
static GPtrArray *
harness_pull_clip (GstHarness * h, guint n)
{
  GPtrArray *bufs = g_ptr_array_new_with_free_func (
      (GDestroyNotify) gst_buffer_unref);
  GstEvent *ev;
  guint i;

  for (i = 0; i < n; i++) {
    GstBuffer *buf = gst_harness_pull (h);

    fail_unless (buf != NULL, "no buffer %u", i);
    g_ptr_array_add (bufs, buf);
  }
  while ((ev = gst_harness_pull_event (h)) != NULL) {
    GstEventType type = GST_EVENT_TYPE (ev);

    gst_event_unref (ev);
    if (type == GST_EVENT_EOS)
      break;
  }
  fail_unless (ev != NULL, "no EOS");
  fail_unless (gst_harness_try_pull (h) == NULL, "a buffer after the clip");
  return bufs;
}

static GstCaps *
harness_current_caps (GstHarness * h)
{
  GstEvent *ev;

  while ((ev = gst_harness_pull_event (h)) != NULL) {
    if (GST_EVENT_TYPE (ev) == GST_EVENT_CAPS) {
      GstCaps *caps;

      gst_event_parse_caps (ev, &caps);
      gst_caps_ref (caps);
      gst_event_unref (ev);
      return caps;
    }
    gst_event_unref (ev);
  }
  return NULL;
}

static gint
threads_of_this_process (void)
{
  GDir *dir = g_dir_open ("/proc/self/task", 0, NULL);
  gint n = 0;

  if (!dir)
    return -1;
  while (g_dir_read_name (dir))
    n++;
  g_dir_close (dir);
  return n;
}

/* ------------------------------------------------------------------------ */
/* Properties */

GST_START_TEST (test_properties)
{
  GstElement *src = gst_element_factory_make ("vdiffsrc", NULL);
  GParamSpec *ps;
  gchar *s;
  guint64 seed;
  guint steps, frames, threads;
  gdouble guidance, shift;
  gint sampler, num_buffers;
  gboolean live, release_dit;
  const gchar *ready_props[] = { "model", "vae", "text-encoder", "tokenizer",
    "frames", "device", "text-encoder-device", "vae-device", "allocation",
    "threads", "release-text-encoder", "release-dit-for-decode", "is-live"
  };
  guint i;

  fail_unless (src != NULL);
  g_object_get (src, "seed", &seed, "steps", &steps, "guidance", &guidance,
      "shift", &shift, "sampler", &sampler, "frames", &frames, "threads",
      &threads, "is-live", &live, "num-buffers", &num_buffers, NULL);
  fail_unless_equals_uint64 (seed, 0);
  fail_unless_equals_int (steps, 0);
  fail_unless_equals_float (guidance, -1.0);
  fail_unless_equals_float (shift, 0.0);
  fail_unless_equals_int (sampler, 0);
  fail_unless_equals_int (frames, 0);
  fail_unless_equals_int (threads, 0);
  fail_unless (!live);
  fail_unless_equals_int (num_buffers, -1);

  g_object_get (src, "device", &s, NULL);
  fail_unless_equals_string (s, "cpu");
  g_free (s);
  g_object_get (src, "model", &s, NULL);
  fail_unless (s == NULL);
  g_free (s);

  /* The text encoder and the VAE follow the compute device unless set. */
  g_object_get (src, "text-encoder-device", &s, NULL);
  fail_unless (s == NULL);
  g_free (s);
  g_object_get (src, "vae-device", &s, NULL);
  fail_unless (s == NULL);
  g_free (s);
  g_object_set (src, "vae-device", "cuda:1", NULL);
  g_object_get (src, "vae-device", &s, NULL);
  fail_unless_equals_string (s, "cuda:1");
  g_free (s);
  g_object_get (src, "release-dit-for-decode", &release_dit, NULL);
  fail_unless (!release_dit);
  gst_util_set_object_arg (G_OBJECT (src), "release-dit-for-decode", "true");
  g_object_get (src, "release-dit-for-decode", &release_dit, NULL);
  fail_unless (release_dit);

  /* A 64-bit seed survives. */
  g_object_set (src, "seed", G_MAXUINT64 - 1, NULL);
  g_object_get (src, "seed", &seed, NULL);
  fail_unless_equals_uint64 (seed, G_MAXUINT64 - 1);

  /* The sampler is an enum with nicks. */
  gst_util_set_object_arg (G_OBJECT (src), "sampler", "euler");
  g_object_get (src, "sampler", &sampler, NULL);
  fail_unless_equals_int (sampler, 1);

  for (i = 0; i < G_N_ELEMENTS (ready_props); i++) {
    ps = g_object_class_find_property (G_OBJECT_GET_CLASS (src),
        ready_props[i]);
    fail_unless (ps != NULL, "no property %s", ready_props[i]);
    fail_unless (ps->flags & GST_PARAM_MUTABLE_READY, "%s is not "
        "READY-mutable", ready_props[i]);
    fail_unless (g_param_spec_get_blurb (ps) != NULL);
  }
  ps = g_object_class_find_property (G_OBJECT_GET_CLASS (src), "prompt");
  fail_unless (ps->flags & GST_PARAM_MUTABLE_PLAYING);

  gst_object_unref (src);
}

GST_END_TEST;

/* ------------------------------------------------------------------------ */
/* Caps */

GST_START_TEST (test_fixate_to_model_defaults)
{
  GstHarness *h = harness_new (NULL);
  GstCaps *caps;
  GstStructure *s;
  gint w, hh, fn, fd;

  /* The shortest clip: only the caps matter here. */
  g_object_set (h->element, "frames", 1, "steps", 1, NULL);
  gst_harness_play (h);
  caps = harness_current_caps (h);
  fail_unless (caps != NULL);
  GST_INFO ("negotiated %" GST_PTR_FORMAT, caps);

  s = gst_caps_get_structure (caps, 0);
  fail_unless (gst_structure_get_int (s, "width", &w));
  fail_unless (gst_structure_get_int (s, "height", &hh));
  fail_unless (gst_structure_get_fraction (s, "framerate", &fn, &fd));
  fail_unless_equals_int (w, model_info.width);
  fail_unless_equals_int (hh, model_info.height);
  fail_unless_equals_int (fn, model_info.fps);
  fail_unless_equals_int (fd, 1);
  fail_unless_equals_string (gst_structure_get_string (s, "format"), "RGB");
  gst_caps_unref (caps);

  /* Tearing down mid-clip cancels it. */
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_caps_constrained)
{
  GstHarness *h = harness_new ("video/x-raw,format=I420,width=[60,70],"
      "height=48,framerate=[1/1,100/1]");
  GstCaps *caps;
  GstStructure *s;
  gint w, hh;

  gst_harness_play (h);
  caps = harness_current_caps (h);
  fail_unless (caps != NULL);
  s = gst_caps_get_structure (caps, 0);
  fail_unless (gst_structure_get_int (s, "width", &w));
  fail_unless (gst_structure_get_int (s, "height", &hh));
  /* 64 is the only multiple of 16 in [60, 70]. */
  fail_unless_equals_int (w, 64);
  fail_unless_equals_int (hh, 48);
  fail_unless_equals_string (gst_structure_get_string (s, "format"), "I420");
  /* YUV output says its matrix. */
  fail_unless_equals_string (gst_structure_get_string (s, "colorimetry"),
      "bt601");
  gst_caps_unref (caps);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_caps_sizes)
{
  GstElement *src = gst_element_factory_make ("vdiffsrc", NULL);
  GstPad *pad = gst_element_get_static_pad (src, "src");
  GstCaps *caps;

  caps = gst_caps_from_string ("video/x-raw,format=RGB,width=64,height=48,"
      "framerate=16/1,pixel-aspect-ratio=1/1");
  fail_unless (gst_pad_query_accept_caps (pad, caps));
  gst_caps_unref (caps);
  caps = gst_caps_from_string ("video/x-raw,format=RGB,width=100,height=48,"
      "framerate=16/1,pixel-aspect-ratio=1/1");
  fail_if (gst_pad_query_accept_caps (pad, caps));
  gst_caps_unref (caps);
  caps = gst_caps_from_string ("video/x-raw,format=NV12,width=64,height=48,"
      "framerate=16/1,pixel-aspect-ratio=1/1");
  fail_if (gst_pad_query_accept_caps (pad, caps));
  gst_caps_unref (caps);

  gst_object_unref (pad);
  gst_object_unref (src);
}

GST_END_TEST;

GST_START_TEST (test_size_not_negotiated)
{
  GstElement *pipeline = gst_pipeline_new (NULL);
  GstElement *src = gst_element_factory_make ("vdiffsrc", NULL);
  GstElement *filter = gst_element_factory_make ("capsfilter", NULL);
  GstElement *sink = gst_element_factory_make ("fakesink", NULL);
  GstCaps *caps = gst_caps_from_string ("video/x-raw,width=100,height=48");
  GstMessage *msg;
  GError *err = NULL;
  gchar *debug = NULL;

  /* Linked without checks, so that the size fails at negotiation. */
  set_models (src);
  g_object_set (src, "frames", FRAMES, "steps", STEPS, NULL);
  g_object_set (filter, "caps", caps, NULL);
  gst_caps_unref (caps);
  gst_bin_add_many (GST_BIN (pipeline), src, filter, sink, NULL);
  fail_unless (gst_element_link (filter, sink));
  fail_unless (gst_element_link_pads_full (src, "src", filter, "sink",
          GST_PAD_LINK_CHECK_NOTHING));

  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  msg = wait_eos_or_error (pipeline, WAIT_TIMEOUT);
  fail_unless (msg != NULL);
  fail_unless_equals_int (GST_MESSAGE_TYPE (msg), GST_MESSAGE_ERROR);
  gst_message_parse_error (msg, &err, &debug);
  fail_unless (strstr (debug, "not-negotiated") != NULL, "%s", debug);
  g_error_free (err);
  g_free (debug);
  gst_message_unref (msg);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
}

GST_END_TEST;

/* ------------------------------------------------------------------------ */
/* Buffers */

GST_START_TEST (test_buffers_timestamps_eos)
{
  GstHarness *h = harness_new ("video/x-raw,format=RGB,width=64,height=48");
  GPtrArray *bufs;
  guint i;

  gst_harness_play (h);
  bufs = harness_pull_clip (h, FRAMES);
  for (i = 0; i < bufs->len; i++) {
    GstBuffer *buf = g_ptr_array_index (bufs, i);

    fail_unless_equals_uint64 (GST_BUFFER_PTS (buf), i * FRAME_DURATION);
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (buf), FRAME_DURATION);
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET (buf), i);
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET_END (buf), i + 1);
    fail_unless_equals_int (gst_buffer_get_size (buf), W * H * 3);
  }
  g_ptr_array_unref (bufs);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_framerate_from_caps)
{
  GstHarness *h = harness_new ("video/x-raw,format=RGB,width=64,height=48,"
      "framerate=30000/1001");
  GPtrArray *bufs;
  guint i;

  gst_harness_play (h);
  bufs = harness_pull_clip (h, FRAMES);
  for (i = 0; i < bufs->len; i++) {
    GstBuffer *buf = g_ptr_array_index (bufs, i);
    GstClockTime pts = gst_util_uint64_scale (i, 1001 * GST_SECOND, 30000);
    GstClockTime next = gst_util_uint64_scale (i + 1, 1001 * GST_SECOND,
        30000);

    fail_unless_equals_uint64 (GST_BUFFER_PTS (buf), pts);
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (buf), next - pts);
  }
  g_ptr_array_unref (bufs);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_num_buffers)
{
  GstHarness *h = harness_new ("video/x-raw,format=RGB,width=64,height=48");
  GPtrArray *bufs;

  g_object_set (h->element, "num-buffers", 3, NULL);
  gst_harness_play (h);
  bufs = harness_pull_clip (h, 3);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (g_ptr_array_index (bufs, 2)),
      2 * FRAME_DURATION);
  g_ptr_array_unref (bufs);
  gst_harness_teardown (h);
}

GST_END_TEST;

static GPtrArray *
clip_in_format (const gchar * format, guint64 seed)
{
  gchar *caps = g_strdup_printf ("video/x-raw,format=%s,width=%d,height=%d",
      format, W, H);
  GstHarness *h = harness_new (caps);
  GPtrArray *bufs;

  g_object_set (h->element, "seed", seed, NULL);
  gst_harness_play (h);
  bufs = harness_pull_clip (h, FRAMES);
  gst_harness_teardown (h);
  g_free (caps);
  return bufs;
}

GST_START_TEST (test_formats)
{
  GPtrArray *rgb = clip_in_format ("RGB", 3);
  GPtrArray *rgbx = clip_in_format ("RGBx", 3);
  GPtrArray *i420 = clip_in_format ("I420", 3);
  GstVideoInfo info;
  guint f;
  gint x, y;
  gdouble max_dy = 0, max_dc = 0;
  gboolean varied = FALSE;

  for (f = 0; f < FRAMES; f++) {
    GstMapInfo a, b;
    GstVideoFrame yuv;
    const guint8 *p;

    fail_unless (gst_buffer_map (g_ptr_array_index (rgb, f), &a,
            GST_MAP_READ));
    fail_unless (gst_buffer_map (g_ptr_array_index (rgbx, f), &b,
            GST_MAP_READ));
    p = a.data;
    for (x = 0; x < W * H; x++) {
      fail_unless (memcmp (p + 3 * x, b.data + 4 * x, 3) == 0);
      fail_unless_equals_int (b.data[4 * x + 3], 0xff);
      if (p[3 * x] != p[0])
        varied = TRUE;
    }
    gst_buffer_unmap (g_ptr_array_index (rgbx, f), &b);

    /* BT.601, limited range, chroma from 2×2 means. */
    gst_video_info_set_format (&info, GST_VIDEO_FORMAT_I420, W, H);
    fail_unless (gst_video_frame_map (&yuv, &info, g_ptr_array_index (i420,
                f), GST_MAP_READ));
    for (y = 0; y < H; y++)
      for (x = 0; x < W; x++) {
        const guint8 *s = p + (y * W + x) * 3;
        gdouble ey = 16 + (65.481 * s[0] + 128.553 * s[1] +
            24.966 * s[2]) / 255.0;
        gint got = GST_VIDEO_FRAME_COMP_DATA (&yuv, 0)[y *
            GST_VIDEO_FRAME_COMP_STRIDE (&yuv, 0) + x];

        max_dy = MAX (max_dy, fabs (got - ey));
        fail_unless (fabs (got - ey) <= 1.0, "Y(%d,%d) = %d, expected %.2f",
            x, y, got, ey);
      }
    for (y = 0; y < H / 2; y++)
      for (x = 0; x < W / 2; x++) {
        gdouble r = 0, g = 0, b2 = 0, eu, ev;
        gint dy, dx, gu, gv;

        for (dy = 0; dy < 2; dy++)
          for (dx = 0; dx < 2; dx++) {
            const guint8 *s = p + ((2 * y + dy) * W + 2 * x + dx) * 3;
            r += s[0] / 4.0;
            g += s[1] / 4.0;
            b2 += s[2] / 4.0;
          }
        eu = 128 + (-37.797 * r - 74.203 * g + 112.0 * b2) / 255.0;
        ev = 128 + (112.0 * r - 93.786 * g - 18.214 * b2) / 255.0;
        gu = GST_VIDEO_FRAME_COMP_DATA (&yuv, 1)[y *
            GST_VIDEO_FRAME_COMP_STRIDE (&yuv, 1) + x];
        gv = GST_VIDEO_FRAME_COMP_DATA (&yuv, 2)[y *
            GST_VIDEO_FRAME_COMP_STRIDE (&yuv, 2) + x];
        fail_unless (fabs (gu - eu) <= 1.0, "U = %d, expected %.2f", gu, eu);
        fail_unless (fabs (gv - ev) <= 1.0, "V = %d, expected %.2f", gv, ev);
        max_dc = MAX (max_dc, MAX (fabs (gu - eu), fabs (gv - ev)));
      }
    gst_video_frame_unmap (&yuv);
    gst_buffer_unmap (g_ptr_array_index (rgb, f), &a);
  }
  fail_unless (varied, "the frames are flat");
  GST_INFO ("max |dY| %.2f, max |dC| %.2f", max_dy, max_dc);

  g_ptr_array_unref (rgb);
  g_ptr_array_unref (rgbx);
  g_ptr_array_unref (i420);
}

GST_END_TEST;

static gboolean
buffers_equal (GstBuffer * a, GstBuffer * b)
{
  GstMapInfo ma, mb;
  gboolean eq;

  gst_buffer_map (a, &ma, GST_MAP_READ);
  gst_buffer_map (b, &mb, GST_MAP_READ);
  eq = ma.size == mb.size && memcmp (ma.data, mb.data, ma.size) == 0;
  gst_buffer_unmap (a, &ma);
  gst_buffer_unmap (b, &mb);
  return eq;
}

GST_START_TEST (test_seed_determinism)
{
  GPtrArray *a = clip_in_format ("RGB", 11);
  GPtrArray *b = clip_in_format ("RGB", 11);
  GPtrArray *c = clip_in_format ("RGB", 12);

  fail_unless (buffers_equal (g_ptr_array_index (a, 0),
          g_ptr_array_index (b, 0)));
  fail_unless (buffers_equal (g_ptr_array_index (a, FRAMES - 1),
          g_ptr_array_index (b, FRAMES - 1)));
  fail_if (buffers_equal (g_ptr_array_index (a, 0), g_ptr_array_index (c,
              0)));
  g_ptr_array_unref (a);
  g_ptr_array_unref (b);
  g_ptr_array_unref (c);
}

GST_END_TEST;

/* A clip of seed 11 (RGB) from a vdiffsrc with @props set: name, value,
 * ..., NULL. */
static GPtrArray *
clip_with (const gchar * const *props)
{
  GstHarness *h = harness_new ("video/x-raw,format=RGB,width=64,height=48");
  GPtrArray *bufs;
  guint i;

  for (i = 0; props && props[i]; i += 2)
    gst_util_set_object_arg (G_OBJECT (h->element), props[i], props[i + 1]);
  g_object_set (h->element, "seed", (guint64) 11, NULL);
  gst_harness_play (h);
  bufs = harness_pull_clip (h, FRAMES);
  gst_harness_teardown (h);
  return bufs;
}

static void
assert_clips_equal (GPtrArray * a, GPtrArray * b, const gchar * what)
{
  guint f;

  fail_unless_equals_int (a->len, b->len);
  for (f = 0; f < a->len; f++)
    fail_unless (buffers_equal (g_ptr_array_index (a, f),
            g_ptr_array_index (b, f)), "%s: frame %u differs", what, f);
}

GST_START_TEST (test_placement_same_frames)
{
  const gchar *const named[] = { "text-encoder-device", "cpu",
    "vae-device", "cpu", NULL
  };
  const gchar *const released[] = { "release-dit-for-decode", "true",
    "release-text-encoder", "true", "vae-device", "cpu", NULL
  };
  GPtrArray *want = clip_with (NULL);
  GPtrArray *a = clip_with (named);
  GPtrArray *b = clip_with (released);

  /* Each model on the device it names; the CPU by name is the default. */
  assert_clips_equal (a, want, "text-encoder-device=cpu vae-device=cpu");
  /* The released models load again and compute the same frames. */
  assert_clips_equal (b, want, "release-dit-for-decode");
  g_ptr_array_unref (want);
  g_ptr_array_unref (a);
  g_ptr_array_unref (b);
}

GST_END_TEST;

/* ------------------------------------------------------------------------ */
/* Messages */

static const gchar *stages[] = { "encode", "sample", "decode", "done" };

static gint
stage_index (const gchar * stage)
{
  guint i;

  for (i = 0; i < G_N_ELEMENTS (stages); i++)
    if (g_strcmp0 (stage, stages[i]) == 0)
      return i;
  return -1;
}

GST_START_TEST (test_progress_messages)
{
  GstElement *pipeline = pipeline_new ("vdiffsrc name=src frames=5 steps=2 ! "
      "video/x-raw,width=64,height=48 ! fakesink");
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg;
  gboolean load_started = FALSE, load_complete = FALSE, eos = FALSE;
  gint last_stage = -1, last_step = -1, n_progress = 0, n_sample = 0;
  gint last_sample_step = -1;
  gdouble last_elapsed = 0;

  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  while (!eos && (msg = gst_bus_timed_pop (bus, WAIT_TIMEOUT)) != NULL) {
    switch (GST_MESSAGE_TYPE (msg)) {
      case GST_MESSAGE_PROGRESS:{
        GstProgressType type;
        gchar *code, *text;

        gst_message_parse_progress (msg, &type, &code, &text);
        fail_unless_equals_string (code, "open");
        if (type == GST_PROGRESS_TYPE_START) {
          fail_if (load_started);
          load_started = TRUE;
        } else if (type == GST_PROGRESS_TYPE_COMPLETE) {
          fail_unless (load_started);
          load_complete = TRUE;
        } else {
          fail ("unexpected progress type %d: %s", type, text);
        }
        g_free (code);
        g_free (text);
        break;
      }
      case GST_MESSAGE_ELEMENT:{
        const GstStructure *s = gst_message_get_structure (msg);
        const gchar *stage;
        gint st, step, total;
        gdouble elapsed, eta;

        if (!gst_structure_has_name (s, "vdiff-progress"))
          break;
        fail_unless (load_complete, "generation progress before loading");
        stage = gst_structure_get_string (s, "stage");
        st = stage_index (stage);
        fail_unless (st >= 0, "stage '%s'", stage);
        fail_unless (gst_structure_get_int (s, "step", &step));
        fail_unless (gst_structure_get_int (s, "total", &total));
        fail_unless (gst_structure_get_double (s, "elapsed", &elapsed));
        fail_unless (gst_structure_get_double (s, "eta", &eta));
        fail_unless (st >= last_stage, "stage %s after %s", stage,
            stages[last_stage]);
        if (st == last_stage)
          fail_unless (step >= last_step);
        fail_unless (step >= 0 && step <= total, "%d of %d", step, total);
        fail_unless (elapsed >= last_elapsed);
        if (st == 1) {
          fail_unless_equals_int (total, STEPS);
          fail_unless (step > last_sample_step);
          last_sample_step = step;
          n_sample++;
        }
        if (st == 2)
          fail_unless_equals_int (total, (FRAMES - 1) / 4 + 1);
        last_stage = st;
        last_step = step;
        last_elapsed = elapsed;
        n_progress++;
        break;
      }
      case GST_MESSAGE_ERROR:
        fail ("error");
        break;
      case GST_MESSAGE_EOS:
        eos = TRUE;
        break;
      default:
        break;
    }
    gst_message_unref (msg);
  }
  fail_unless (eos);
  fail_unless (load_complete);
  /* Step 0 (sampling begins), then one per step. */
  fail_unless_equals_int (n_sample, STEPS + 1);
  fail_unless_equals_int (last_sample_step, STEPS);
  fail_unless_equals_int (last_stage, 3);
  GST_INFO ("%d progress messages", n_progress);

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
}

GST_END_TEST;

GST_START_TEST (test_duration_query)
{
  GstElement *pipeline = pipeline_new ("vdiffsrc frames=5 steps=2 ! "
      "video/x-raw,width=64,height=48 ! fakesink");
  gint64 dur = -1;

  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_PAUSED),
      GST_STATE_CHANGE_ASYNC);
  fail_unless_equals_int (gst_element_get_state (pipeline, NULL, NULL,
          WAIT_TIMEOUT), GST_STATE_CHANGE_SUCCESS);
  fail_unless (gst_element_query_duration (pipeline, GST_FORMAT_TIME, &dur));
  fail_unless_equals_uint64 (dur, FRAMES * FRAME_DURATION);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
}

GST_END_TEST;

/* ------------------------------------------------------------------------ */
/* Errors */

GST_START_TEST (test_error_missing_file)
{
  expect_start_error ("model=/nonexistent/wan.safetensors",
      GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND, "/nonexistent/");
}

GST_END_TEST;

GST_START_TEST (test_error_no_model)
{
  GstElement *pipeline = gst_parse_launch ("vdiffsrc ! fakesink", NULL);
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg;

  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_timed_pop_filtered (bus, 0, GST_MESSAGE_ERROR);
  assert_error_message (msg, GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_NOT_FOUND, NULL);
  gst_message_unref (msg);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
}

GST_END_TEST;

GST_START_TEST (test_error_wrong_file_type)
{
  gchar *props = g_strdup_printf ("model=%s", vae_path);

  /* The VAE given as the DiT. */
  expect_start_error (props, GST_STREAM_ERROR, GST_STREAM_ERROR_WRONG_TYPE,
      NULL);
  g_free (props);
}

GST_END_TEST;

GST_START_TEST (test_error_not_a_model)
{
  gchar *path = g_build_filename (models_dir, "garbage.safetensors", NULL);
  gchar *props = g_strdup_printf ("model=%s", path);

  fail_unless (g_file_set_contents (path, "this is not a checkpoint", -1,
          NULL));
  expect_start_error (props, GST_STREAM_ERROR, GST_STREAM_ERROR_WRONG_TYPE,
      "garbage.safetensors");
  g_unlink (path);
  g_free (props);
  g_free (path);
}

GST_END_TEST;

GST_START_TEST (test_error_bad_allocation)
{
  const gchar *bad = "cuda:0,lots;cpu,*";
  gchar *engine_msg;

  fail_if (vd_allocation_validate (bad) == VD_OK);
  engine_msg = g_strdup (vd_last_error ());
  fail_unless (*engine_msg != '\0');
  expect_start_error ("allocation=\"cuda:0,lots;cpu,*\"", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_SETTINGS, engine_msg);
  g_free (engine_msg);
}

GST_END_TEST;

GST_START_TEST (test_error_bad_device)
{
  expect_start_error ("device=gpu:0", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_SETTINGS, "gpu:0");
}

GST_END_TEST;

GST_START_TEST (test_error_bad_vae_device)
{
  /* Not a device: a settings error naming the property. */
  expect_start_error ("vae-device=tpu", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_SETTINGS, "vae-device tpu");
  expect_start_error ("text-encoder-device=tpu", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_SETTINGS, "text-encoder-device tpu");
  /* A GPU this build cannot have. */
  if (!VDIFF_TEST_HAVE_CUDA)
    expect_start_error ("vae-device=cuda:7", GST_LIBRARY_ERROR,
        GST_LIBRARY_ERROR_INIT, "vae-device cuda:7");
}

GST_END_TEST;

GST_START_TEST (test_error_cuda_in_cpu_build)
{
  if (VDIFF_TEST_HAVE_CUDA)
    return;                     /* built with CUDA: nothing to check here */
  expect_start_error ("device=cuda:0", GST_LIBRARY_ERROR,
      GST_LIBRARY_ERROR_INIT, NULL);
}

GST_END_TEST;

GST_START_TEST (test_error_bad_frames)
{
  expect_start_error ("frames=6", GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_SETTINGS, "6");
}

GST_END_TEST;

/* ------------------------------------------------------------------------ */
/* Life cycle */

/* Wait for a vdiff-progress message of @stage with step >= @step. */
static gboolean
wait_progress (GstBus * bus, const gchar * stage, gint step)
{
  GstMessage *msg;

  while ((msg = gst_bus_timed_pop (bus, WAIT_TIMEOUT)) != NULL) {
    const GstStructure *s = gst_message_get_structure (msg);
    gboolean done = FALSE;
    gint n;

    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR
        || GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS) {
      gst_message_unref (msg);
      return FALSE;
    }
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ELEMENT
        && gst_structure_has_name (s, "vdiff-progress")
        && g_strcmp0 (gst_structure_get_string (s, "stage"), stage) == 0
        && gst_structure_get_int (s, "step", &n) && n >= step)
      done = TRUE;
    gst_message_unref (msg);
    if (done)
      return TRUE;
  }
  return FALSE;
}

GST_START_TEST (test_cancel_while_sampling)
{
  GstElement *pipeline = pipeline_new ("vdiffsrc steps=1000 frames=9 ! "
      "video/x-raw,width=128,height=96 ! fakesink");
  GstBus *bus = gst_element_get_bus (pipeline);
  gint64 t0;
  gdouble seconds;

  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  fail_unless (wait_progress (bus, "sample", 1));
  t0 = g_get_monotonic_time ();
  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  seconds = (g_get_monotonic_time () - t0) / 1e6;
  GST_INFO ("stopped in %.3f s", seconds);
  /* Within one transformer block; generous for loaded CI machines. */
  fail_unless (seconds < 10.0, "stopping took %.1f s", seconds);

  gst_object_unref (bus);
  gst_object_unref (pipeline);
}

GST_END_TEST;

GST_START_TEST (test_state_cycles)
{
  GstElement *pipeline = pipeline_new ("vdiffsrc frames=5 steps=2 ! "
      "video/x-raw,width=64,height=48 ! fakesink");
  GstBus *bus = gst_element_get_bus (pipeline);
  gint i, threads_before = -1;

  for (i = 0; i < 20; i++) {
    fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING) !=
        GST_STATE_CHANGE_FAILURE);
    if (i % 2 == 0) {
      GstMessage *msg = wait_eos_or_error (pipeline, WAIT_TIMEOUT);

      fail_unless (msg != NULL);
      fail_unless_equals_int (GST_MESSAGE_TYPE (msg), GST_MESSAGE_EOS);
      gst_message_unref (msg);
    } else {
      /* Stop mid-clip. */
      fail_unless (wait_progress (bus, "sample", 1));
    }
    fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_NULL),
        GST_STATE_CHANGE_SUCCESS);
    gst_bus_set_flushing (bus, TRUE);
    gst_bus_set_flushing (bus, FALSE);
    if (i == 1)
      threads_before = threads_of_this_process ();
  }
  /* No generation thread (or engine worker) survives a cycle. */
  fail_unless_equals_int (threads_of_this_process (), threads_before);

  gst_object_unref (bus);
  gst_object_unref (pipeline);
}

GST_END_TEST;

static GstBuffer *
pull_buffer (GstElement * sink)
{
  GstSample *sample = gst_app_sink_try_pull_sample (GST_APP_SINK (sink), WAIT_TIMEOUT);
  GstBuffer *buf;

  if (sample == NULL)
    return NULL;
  buf = gst_buffer_ref (gst_sample_get_buffer (sample));
  gst_sample_unref (sample);
  return buf;
}

GST_START_TEST (test_two_sources)
{
  GstElement *pipeline = pipeline_new (
      "vdiffsrc name=a seed=5 frames=5 steps=2 ! "
      "video/x-raw,format=RGB,width=64,height=48 ! appsink name=sa sync=false "
      "vdiffsrc name=b seed=5 frames=5 steps=2 ! "
      "video/x-raw,format=RGB,width=64,height=48 ! appsink name=sb sync=false");
  GstElement *sa = gst_bin_get_by_name (GST_BIN (pipeline), "sa");
  GstElement *sb = gst_bin_get_by_name (GST_BIN (pipeline), "sb");
  GstMessage *msg;
  gint i;

  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  for (i = 0; i < FRAMES; i++) {
    GstBuffer *a = pull_buffer (sa), *b = pull_buffer (sb);

    fail_unless (a != NULL && b != NULL, "frame %d missing", i);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (a), GST_BUFFER_PTS (b));
    /* Same files, same seed: the shared weights give the same frames. */
    fail_unless (buffers_equal (a, b), "frame %d differs", i);
    gst_buffer_unref (a);
    gst_buffer_unref (b);
  }
  fail_unless (gst_app_sink_try_pull_sample (GST_APP_SINK (sa), WAIT_TIMEOUT) == NULL);
  fail_unless (gst_app_sink_try_pull_sample (GST_APP_SINK (sb), WAIT_TIMEOUT) == NULL);
  msg = wait_eos_or_error (pipeline, WAIT_TIMEOUT);
  fail_unless (msg != NULL && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS);
  gst_message_unref (msg);

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sa);
  gst_object_unref (sb);
  gst_object_unref (pipeline);
}

GST_END_TEST;

GST_START_TEST (test_two_pipelines)
{
  GstElement *p1 = pipeline_new ("vdiffsrc seed=1 frames=5 steps=2 ! "
      "video/x-raw,width=64,height=48 ! fakesink");
  GstElement *p2 = pipeline_new ("vdiffsrc seed=2 frames=5 steps=2 ! "
      "video/x-raw,width=32,height=32 ! fakesink");
  GstMessage *m1, *m2;

  gst_element_set_state (p1, GST_STATE_PLAYING);
  gst_element_set_state (p2, GST_STATE_PLAYING);
  m1 = wait_eos_or_error (p1, WAIT_TIMEOUT);
  m2 = wait_eos_or_error (p2, WAIT_TIMEOUT);
  fail_unless (m1 != NULL && GST_MESSAGE_TYPE (m1) == GST_MESSAGE_EOS);
  fail_unless (m2 != NULL && GST_MESSAGE_TYPE (m2) == GST_MESSAGE_EOS);
  gst_message_unref (m1);
  gst_message_unref (m2);
  gst_element_set_state (p1, GST_STATE_NULL);
  gst_element_set_state (p2, GST_STATE_NULL);
  gst_object_unref (p1);
  gst_object_unref (p2);
}

GST_END_TEST;

/* Play the clip of `launch` (frames=5 into an appsink "sink"), seek back
 * to the start and check the second clip has the same frames and
 * timestamps; with `only_to_start`, a seek elsewhere must be refused. */
static void
check_seek_regenerates (const gchar * launch, gboolean only_to_start)
{
  GstElement *pipeline = pipeline_new (launch);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GstBuffer *clip1[FRAMES];
  gint i;

  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  for (i = 0; i < FRAMES; i++) {
    clip1[i] = pull_buffer (sink);
    fail_unless (clip1[i] != NULL);
  }
  fail_unless (gst_app_sink_try_pull_sample (GST_APP_SINK (sink), WAIT_TIMEOUT) == NULL);
  fail_unless (gst_app_sink_is_eos (GST_APP_SINK (sink)));

  if (only_to_start)
    fail_if (gst_element_seek_simple (pipeline, GST_FORMAT_TIME,
            GST_SEEK_FLAG_FLUSH, GST_SECOND / 8));
  fail_unless (gst_element_seek_simple (pipeline, GST_FORMAT_TIME,
          GST_SEEK_FLAG_FLUSH, 0));

  for (i = 0; i < FRAMES; i++) {
    GstBuffer *buf = pull_buffer (sink);

    fail_unless (buf != NULL, "no frame %d after the seek", i);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (buf), i * FRAME_DURATION);
    fail_unless (buffers_equal (buf, clip1[i]), "frame %d differs", i);
    gst_buffer_unref (buf);
    gst_buffer_unref (clip1[i]);
  }
  fail_unless (gst_app_sink_try_pull_sample (GST_APP_SINK (sink), WAIT_TIMEOUT) == NULL);

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
}

GST_START_TEST (test_seek_to_start_regenerates)
{
  /* Only back to the start. */
  check_seek_regenerates ("vdiffsrc frames=5 steps=2 ! "
      "video/x-raw,format=RGB,width=64,height=48 ! appsink name=sink "
      "sync=false", TRUE);
}

GST_END_TEST;

GST_START_TEST (test_release_dit_regenerates)
{
  /* The first clip frees the DiT before decoding; the second loads it
   * again, with the same frames. */
  check_seek_regenerates ("vdiffsrc release-dit-for-decode=true "
      "frames=5 steps=2 ! video/x-raw,format=RGB,width=64,height=48 ! "
      "appsink name=sink sync=false", FALSE);
}

GST_END_TEST;

GST_START_TEST (test_seek_mid_clip)
{
  GstElement *pipeline = pipeline_new ("vdiffsrc frames=5 steps=2 ! "
      "video/x-raw,format=RGB,width=64,height=48 ! appsink name=sink "
      "sync=false max-buffers=1");
  GstElement *sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  GstBuffer *buf;
  gint i;

  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  buf = pull_buffer (sink);
  fail_unless (buf != NULL);
  gst_buffer_unref (buf);

  fail_unless (gst_element_seek_simple (pipeline, GST_FORMAT_TIME,
          GST_SEEK_FLAG_FLUSH, 0));
  for (i = 0; i < FRAMES; i++) {
    buf = pull_buffer (sink);
    fail_unless (buf != NULL, "no frame %d after the seek", i);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (buf), i * FRAME_DURATION);
    gst_buffer_unref (buf);
  }
  fail_unless (gst_app_sink_try_pull_sample (GST_APP_SINK (sink), WAIT_TIMEOUT) == NULL);

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
}

GST_END_TEST;

static Suite *
vdiffsrc_suite (void)
{
  Suite *s = suite_create ("vdiffsrc");
  TCase *tc_props = tcase_create ("properties");
  TCase *tc_caps = tcase_create ("caps");
  TCase *tc_data = tcase_create ("data");
  TCase *tc_errors = tcase_create ("errors");
  TCase *tc_life = tcase_create ("lifecycle");

  tcase_add_test (tc_props, test_properties);
  suite_add_tcase (s, tc_props);

  tcase_set_timeout (tc_caps, 180);
  tcase_add_test (tc_caps, test_fixate_to_model_defaults);
  tcase_add_test (tc_caps, test_caps_constrained);
  tcase_add_test (tc_caps, test_caps_sizes);
  tcase_add_test (tc_caps, test_size_not_negotiated);
  suite_add_tcase (s, tc_caps);

  tcase_set_timeout (tc_data, 300);
  tcase_add_test (tc_data, test_buffers_timestamps_eos);
  tcase_add_test (tc_data, test_framerate_from_caps);
  tcase_add_test (tc_data, test_num_buffers);
  tcase_add_test (tc_data, test_formats);
  tcase_add_test (tc_data, test_seed_determinism);
  tcase_add_test (tc_data, test_progress_messages);
  tcase_add_test (tc_data, test_duration_query);
  tcase_add_test (tc_data, test_placement_same_frames);
  suite_add_tcase (s, tc_data);

  tcase_set_timeout (tc_errors, 120);
  tcase_add_test (tc_errors, test_error_missing_file);
  tcase_add_test (tc_errors, test_error_no_model);
  tcase_add_test (tc_errors, test_error_wrong_file_type);
  tcase_add_test (tc_errors, test_error_not_a_model);
  tcase_add_test (tc_errors, test_error_bad_allocation);
  tcase_add_test (tc_errors, test_error_bad_device);
  tcase_add_test (tc_errors, test_error_bad_vae_device);
  tcase_add_test (tc_errors, test_error_cuda_in_cpu_build);
  tcase_add_test (tc_errors, test_error_bad_frames);
  suite_add_tcase (s, tc_errors);

  tcase_set_timeout (tc_life, 600);
  tcase_add_test (tc_life, test_cancel_while_sampling);
  tcase_add_test (tc_life, test_state_cycles);
  tcase_add_test (tc_life, test_two_sources);
  tcase_add_test (tc_life, test_two_pipelines);
  tcase_add_test (tc_life, test_seek_to_start_regenerates);
  tcase_add_test (tc_life, test_release_dit_regenerates);
  tcase_add_test (tc_life, test_seek_mid_clip);
  suite_add_tcase (s, tc_life);

  return s;
}

int
main (int argc, char **argv)
{
  Suite *s;
  int failed;

  gst_check_init (&argc, &argv);
  if (!make_models ()) {
    remove_models ();
    return 1;
  }
  s = vdiffsrc_suite ();
  failed = gst_check_run_suite (s, "vdiffsrc", __FILE__);
  remove_models ();
  return failed;
}
