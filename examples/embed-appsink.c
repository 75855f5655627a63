/* embed-appsink: generate a clip inside an application and receive its
 * frames through appsink.
 *
 * It builds  vdiffsrc ! video/x-raw,format=RGB,... ! appsink  by hand,
 * prints the loading and per-step progress messages from the bus, counts
 * the frames that arrive (and their mean brightness, to show that the pixels
 * are there), and quits at EOS.  Ctrl-C stops generation within one
 * transformer block.
 *
 *   embed-appsink --model wan2.1_t2v_1.3B_fp16.safetensors \
 *       --vae wan_2.1_vae.safetensors \
 *       --text-encoder umt5_xxl_fp8_e4m3fn_scaled.safetensors \
 *       --device cuda:0 --frames 33 "a red fox runs through fresh snow"
 *
 * From a build tree: GST_PLUGIN_PATH=<builddir>/gst <builddir>/examples/embed-appsink ...
 *
 * SPDX-License-Identifier: MIT
 */
#include <glib-unix.h>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>

typedef struct
{
  GMainLoop *loop;
  GstElement *pipeline;
  guint frames;
  gint exit_code;
} App;

/* appsink's streaming thread: one call per frame. */
static GstFlowReturn
on_new_sample (GstAppSink * sink, gpointer user_data)
{
  App *app = user_data;
  GstSample *sample = gst_app_sink_pull_sample (sink);
  GstBuffer *buf;
  GstVideoInfo info;
  GstVideoFrame frame;

  if (sample == NULL)
    return GST_FLOW_EOS;

  buf = gst_sample_get_buffer (sample);
  if (gst_video_info_from_caps (&info, gst_sample_get_caps (sample))
      && gst_video_frame_map (&frame, &info, buf, GST_MAP_READ)) {
    const guint8 *rows = GST_VIDEO_FRAME_PLANE_DATA (&frame, 0);
    gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0);
    guint64 sum = 0;
    gint x, y;

    for (y = 0; y < info.height; y++)
      for (x = 0; x < info.width * 3; x++)
        sum += rows[y * stride + x];
    g_print ("frame %3u  pts %" GST_TIME_FORMAT "  %dx%d  mean %.1f\n",
        app->frames, GST_TIME_ARGS (GST_BUFFER_PTS (buf)), info.width,
        info.height, (double) sum / (info.width * 3.0 * info.height));
    gst_video_frame_unmap (&frame);
  }
  g_atomic_int_inc (&app->frames);
  gst_sample_unref (sample);
  return GST_FLOW_OK;
}

static gboolean
on_bus_message (GstBus * bus, GstMessage * msg, gpointer user_data)
{
  App *app = user_data;

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_PROGRESS:{
      GstProgressType type;
      gchar *code, *text;

      gst_message_parse_progress (msg, &type, &code, &text);
      g_print ("[%s] %s\n", code, text);
      g_free (code);
      g_free (text);
      break;
    }
    case GST_MESSAGE_ELEMENT:{
      const GstStructure *s = gst_message_get_structure (msg);
      gint step, total;
      gdouble elapsed, eta;

      if (gst_structure_has_name (s, "vdiff-progress")
          && gst_structure_get_int (s, "step", &step)
          && gst_structure_get_int (s, "total", &total)
          && gst_structure_get_double (s, "elapsed", &elapsed)
          && gst_structure_get_double (s, "eta", &eta)) {
        g_print ("%-7s %3d/%-3d  %7.1f s elapsed", gst_structure_get_string (s,
                "stage"), step, total, elapsed);
        if (eta >= 0)
          g_print (", %.1f s to go", eta);
        g_print ("\n");
      }
      break;
    }
    case GST_MESSAGE_ERROR:{
      GError *err = NULL;
      gchar *debug = NULL;

      gst_message_parse_error (msg, &err, &debug);
      g_printerr ("error from %s: %s\n(%s)\n", GST_OBJECT_NAME (msg->src),
          err->message, debug ? debug : "");
      g_error_free (err);
      g_free (debug);
      app->exit_code = 1;
      g_main_loop_quit (app->loop);
      break;
    }
    case GST_MESSAGE_EOS:
      g_print ("end of clip: %u frames\n", g_atomic_int_get (&app->frames));
      g_main_loop_quit (app->loop);
      break;
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_interrupt (gpointer user_data)
{
  App *app = user_data;

  g_printerr ("interrupted\n");
  app->exit_code = 130;
  g_main_loop_quit (app->loop);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  gchar *model = NULL, *vae = NULL, *text_encoder = NULL, *device = NULL;
  gint width = 0, height = 0, frames = 0, steps = 0;
  gint64 seed = 0;
  GOptionEntry entries[] = {
    {"model", 0, 0, G_OPTION_ARG_FILENAME, &model, "DiT checkpoint", "FILE"},
    {"vae", 0, 0, G_OPTION_ARG_FILENAME, &vae, "VAE checkpoint", "FILE"},
    {"text-encoder", 0, 0, G_OPTION_ARG_FILENAME, &text_encoder,
        "umT5 checkpoint", "FILE"},
    {"device", 0, 0, G_OPTION_ARG_STRING, &device, "cpu, cuda or cuda:N",
        "DEV"},
    {"width", 0, 0, G_OPTION_ARG_INT, &width, "width (multiple of 16)", "N"},
    {"height", 0, 0, G_OPTION_ARG_INT, &height, "height (multiple of 16)",
        "N"},
    {"frames", 0, 0, G_OPTION_ARG_INT, &frames, "clip length, 4k+1", "N"},
    {"steps", 0, 0, G_OPTION_ARG_INT, &steps, "sampling steps", "N"},
    {"seed", 0, 0, G_OPTION_ARG_INT64, &seed, "noise seed", "N"},
    {NULL},
  };
  GOptionContext *ctx;
  GError *error = NULL;
  GstElement *src, *capsfilter, *sink;
  GstCaps *caps;
  GstBus *bus;
  App app = { 0 };

  ctx = g_option_context_new ("PROMPT - generate a clip and count its frames");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 2;
  }
  if (argc != 2 || !model || !vae || !text_encoder) {
    gchar *help = g_option_context_get_help (ctx, TRUE, NULL);

    g_printerr ("%s", help);
    g_free (help);
    return 2;
  }
  g_option_context_free (ctx);

  src = gst_element_factory_make ("vdiffsrc", "src");
  capsfilter = gst_element_factory_make ("capsfilter", NULL);
  sink = gst_element_factory_make ("appsink", "sink");
  if (!src || !capsfilter || !sink) {
    g_printerr ("vdiffsrc is not installed (try GST_PLUGIN_PATH=<builddir>/gst)"
        "\n");
    return 1;
  }

  g_object_set (src, "model", model, "vae", vae, "text-encoder", text_encoder,
      "prompt", argv[1], "seed", (guint64) seed, NULL);
  if (device)
    g_object_set (src, "device", device, NULL);
  if (frames > 0)
    g_object_set (src, "frames", frames, NULL);
  if (steps > 0)
    g_object_set (src, "steps", steps, NULL);

  /* Packed RGB, the engine's own layout: no conversion in the element. */
  caps = gst_caps_new_simple ("video/x-raw", "format", G_TYPE_STRING, "RGB",
      NULL);
  if (width > 0)
    gst_caps_set_simple (caps, "width", G_TYPE_INT, width, NULL);
  if (height > 0)
    gst_caps_set_simple (caps, "height", G_TYPE_INT, height, NULL);
  g_object_set (capsfilter, "caps", caps, NULL);
  gst_caps_unref (caps);

  /* No clock sync: take frames as fast as they are made. */
  g_object_set (sink, "sync", FALSE, "emit-signals", TRUE, NULL);
  g_signal_connect (sink, "new-sample", G_CALLBACK (on_new_sample), &app);

  app.pipeline = gst_pipeline_new ("embed");
  gst_bin_add_many (GST_BIN (app.pipeline), src, capsfilter, sink, NULL);
  if (!gst_element_link_many (src, capsfilter, sink, NULL)) {
    g_printerr ("could not link the pipeline\n");
    return 1;
  }

  app.loop = g_main_loop_new (NULL, FALSE);
  bus = gst_pipeline_get_bus (GST_PIPELINE (app.pipeline));
  gst_bus_add_watch (bus, on_bus_message, &app);
  g_unix_signal_add (SIGINT, on_interrupt, &app);

  /* Loading the models happens in this call (READY→PAUSED); its progress
   * messages wait on the bus until the main loop runs. */
  if (gst_element_set_state (app.pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);

    if (msg) {
      on_bus_message (bus, msg, &app);
      gst_message_unref (msg);
    } else {
      g_printerr ("could not start the pipeline\n");
    }
    app.exit_code = 1;
  } else {
    g_main_loop_run (app.loop);
  }

  /* Leaving PLAYING cancels a clip still being generated. */
  gst_element_set_state (app.pipeline, GST_STATE_NULL);
  g_print ("%u frames received\n", g_atomic_int_get (&app.frames));

  gst_bus_remove_watch (bus);
  gst_object_unref (bus);
  gst_object_unref (app.pipeline);
  g_main_loop_unref (app.loop);
  g_free (model);
  g_free (vae);
  g_free (text_encoder);
  g_free (device);
  return app.exit_code;
}
