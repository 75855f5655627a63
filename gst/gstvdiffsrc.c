/* vdiffsrc: a text-to-video source running Wan 2.1/2.2 diffusion models
 * through libvdiff.
 *
 * SPDX-License-Identifier: MIT
 */

/**
 * SECTION:element-vdiffsrc
 * @title: vdiffsrc
 *
 * vdiffsrc generates a video clip from a text prompt with a Wan 2.1 or 2.2
 * text-to-video diffusion model.  The properties name the model files (the
 * diffusion transformer, the VAE and the umT5 text encoder), the prompt and
 * the sampling settings; the size and rate of the clip come from the caps
 * and default to the model's own (832×480 at 16 fps for Wan 2.1).
 *
 * The models are loaded when the element goes from READY to PAUSED, between
 * a #GST_PROGRESS_TYPE_START and a #GST_PROGRESS_TYPE_COMPLETE progress
 * message.  Several vdiffsrc in one process that name the same files and
 * device share one copy of the weights.
 *
 * Generation runs on a thread of its own.  While it runs the element posts
 * an element message named `vdiff-progress` once per stage change and once
 * per sampling step, with the fields:
 *
 * * `stage` (string): "encode", "sample", "decode" or "done"
 * * `step` (int): steps (or decoded latent frames) completed in this stage
 * * `total` (int): of this many
 * * `elapsed` (double): seconds since generation began
 * * `eta` (double): estimated seconds until the clip is complete, < 0 if unknown
 *
 * Frames leave the element as soon as the VAE decodes them, timestamped from
 * 0; EOS follows the last frame of the clip (or #GstBaseSrc:num-buffers).
 * A flushing seek to 0 generates the clip again, with the current prompt and
 * settings; other seeks are refused.  Leaving PAUSED cancels a generation in
 * progress within one transformer block.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -m vdiffsrc model=wan2.1_t2v_1.3B_fp16.safetensors \
 *     vae=wan_2.1_vae.safetensors \
 *     text-encoder=umt5_xxl_fp8_e4m3fn_scaled.safetensors \
 *     prompt="a red fox runs through fresh snow" device=cuda:0 ! \
 *     video/x-raw,width=832,height=480 ! videoconvert ! x264enc ! mp4mux ! \
 *     filesink location=fox.mp4
 * ]| Generates 81 frames at 832×480 and 16 fps on the first GPU and writes
 * them to an MP4 file, printing loading and per-step progress messages.
 * |[
 * gst-launch-1.0 vdiffsrc model=wan2.1_t2v_14B_fp8_e4m3fn.safetensors \
 *     vae=wan_2.1_vae.safetensors text-encoder=umt5_xxl_fp16.safetensors \
 *     prompt="waves at dusk" device=cuda:0 allocation="cuda:0,12gb;cpu,*" \
 *     frames=33 steps=30 seed=7 ! videoconvert ! autovideosink
 * ]| Runs the 14B model with 12 GB of its weights on the GPU and the rest
 * streamed from host memory.
 * |[
 * gst-launch-1.0 vdiffsrc model=wan2.1_t2v_14B_fp8_e4m3fn.safetensors \
 *     vae=wan_2.1_vae.safetensors text-encoder=umt5_xxl_fp16.safetensors \
 *     prompt="waves at dusk" device=cuda:0 text-encoder-device=cpu \
 *     release-dit-for-decode=true ! videoconvert ! autovideosink
 * ]| Encodes the prompt on the CPU, samples on the first GPU, and frees the
 * DiT there before the VAE decodes, so the decode has its memory.
 *
 * Since: 0.1
 */

#include <math.h>
#include <stdarg.h>
#include <string.h>

#include <gst/video/video.h>

#include "gstvdiffsrc.h"
#include "vdiff/pipeline.h"
#include "vdiff/status.h"

GST_DEBUG_CATEGORY_STATIC (gst_vdiff_src_debug);
#define GST_CAT_DEFAULT gst_vdiff_src_debug

#define VDIFF_MAX_SIZE 8192
#define VDIFF_SIZE_MULTIPLE 16  /* until a model tells otherwise */
#define VDIFF_DEFAULT_WIDTH 832
#define VDIFF_DEFAULT_HEIGHT 480
#define VDIFF_DEFAULT_FPS 16

#define DEFAULT_PROMPT ""
#define DEFAULT_NEGATIVE_PROMPT ""
#define DEFAULT_SEED 0
#define DEFAULT_STEPS 0
#define MAX_STEPS 1000
#define DEFAULT_GUIDANCE -1.0
#define MAX_GUIDANCE 100.0
#define DEFAULT_SHIFT 0.0
#define MAX_SHIFT 100.0
#define DEFAULT_SAMPLER GST_VDIFF_SAMPLER_UNIPC
#define DEFAULT_FRAMES 0
#define MAX_FRAMES 4097
#define DEFAULT_DEVICE "cpu"
#define DEFAULT_MODEL_DEVICE NULL       /* the compute device */
#define DEFAULT_ALLOCATION NULL
#define DEFAULT_THREADS 0
#define MAX_THREADS 1024
#define DEFAULT_IS_LIVE FALSE

enum
{
  PROP_0,
  PROP_MODEL,
  PROP_VAE,
  PROP_TEXT_ENCODER,
  PROP_TOKENIZER,
  PROP_PROMPT,
  PROP_NEGATIVE_PROMPT,
  PROP_SEED,
  PROP_STEPS,
  PROP_GUIDANCE,
  PROP_SHIFT,
  PROP_SAMPLER,
  PROP_FRAMES,
  PROP_DEVICE,
  PROP_ALLOCATION,
  PROP_THREADS,
  PROP_RELEASE_TEXT_ENCODER,
  PROP_IS_LIVE,
  PROP_TEXT_ENCODER_DEVICE,
  PROP_VAE_DEVICE,
  PROP_RELEASE_DIT_FOR_DECODE,
};

struct _GstVdiffSrc
{
  GstPushSrc parent;

  /* Properties, under the object lock.  Model files, device, allocation,
   * threads and frames are read in start(); the generation settings when a
   * clip starts. */
  gchar *model;
  gchar *vae;
  gchar *text_encoder;
  gchar *tokenizer;
  gchar *prompt;
  gchar *negative_prompt;
  guint64 seed;
  guint steps;
  gdouble guidance;
  gdouble shift;
  GstVdiffSampler sampler;
  guint frames;
  gchar *device;
  gchar *text_encoder_device;
  gchar *vae_device;
  gchar *allocation;
  guint threads;
  gboolean release_text_encoder;
  gboolean release_dit_for_decode;

  /* Between start() and stop().  The pipeline and request are only touched
   * by the state-change thread and the streaming thread (which basesrc never
   * runs at the same time as start/stop); model_info, have_info and
   * clip_frames are also read by queries, under the object lock. */
  vd_pipeline *pipeline;
  vd_request *request;
  vd_pipeline_info model_info;
  gboolean have_info;
  gint clip_frames;

  /* The negotiated format (set_caps; the object lock for readers outside
   * the streaming thread) and the fixed-point RGB→YUV coefficients. */
  GstVideoInfo vinfo;
  gint yuv_coef[3][3];
  gint yuv_offset[3];

  /* Streaming thread: the index of the next frame to push. */
  guint64 n_frames;

  /* The generation thread and its output, under gen_lock. */
  GMutex gen_lock;
  GCond gen_cond;
  GThread *gen_thread;          /* NULL: no clip started since the last reset */
  GQueue queue;                 /* GBytes, one packed RGB frame each */
  gint gen_width, gen_height;
  gboolean gen_done;            /* vd_pipeline_generate returned */
  gboolean gen_cancel;
  vd_status gen_status;
  gchar *gen_error;
  gboolean flushing;            /* between unlock() and unlock_stop() */
};

/* What the generation thread owns. */
typedef struct
{
  GstVdiffSrc *self;
  vd_pipeline *pipeline;
  vd_request *request;
  gchar *prompt;
  gchar *negative_prompt;
  vd_request_params params;
} GstVdiffJob;

static GstStaticPadTemplate gst_vdiff_src_template =
GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("video/x-raw, "
        "format = (string) { RGB, RGBx, I420 }, "
        "width = (int) [ 16, 8192, 16 ], "
        "height = (int) [ 16, 8192, 16 ], "
        "framerate = (fraction) [ 1/1000, 1000/1 ], "
        "pixel-aspect-ratio = (fraction) 1/1")
    );

#define gst_vdiff_src_parent_class parent_class
G_DEFINE_TYPE (GstVdiffSrc, gst_vdiff_src, GST_TYPE_PUSH_SRC);
GST_ELEMENT_REGISTER_DEFINE (vdiffsrc, "vdiffsrc", GST_RANK_NONE,
    GST_TYPE_VDIFF_SRC);

GType
gst_vdiff_sampler_get_type (void)
{
  static GType sampler_type = 0;
  static const GEnumValue samplers[] = {
    {GST_VDIFF_SAMPLER_UNIPC, "UniPC multistep (bh2), the reference sampler",
        "unipc"},
    {GST_VDIFF_SAMPLER_EULER, "Flow-matching Euler", "euler"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&sampler_type)) {
    GType type = g_enum_register_static ("GstVdiffSampler", samplers);
    g_once_init_leave (&sampler_type, type);
  }
  return sampler_type;
}

static void gst_vdiff_src_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_vdiff_src_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_vdiff_src_finalize (GObject * object);
static gboolean gst_vdiff_src_send_event (GstElement * element,
    GstEvent * event);

static GstCaps *gst_vdiff_src_get_caps (GstBaseSrc * bsrc, GstCaps * filter);
static GstCaps *gst_vdiff_src_fixate (GstBaseSrc * bsrc, GstCaps * caps);
static gboolean gst_vdiff_src_set_caps (GstBaseSrc * bsrc, GstCaps * caps);
static gboolean gst_vdiff_src_decide_allocation (GstBaseSrc * bsrc,
    GstQuery * query);
static gboolean gst_vdiff_src_start (GstBaseSrc * bsrc);
static gboolean gst_vdiff_src_stop (GstBaseSrc * bsrc);
static gboolean gst_vdiff_src_unlock (GstBaseSrc * bsrc);
static gboolean gst_vdiff_src_unlock_stop (GstBaseSrc * bsrc);
static gboolean gst_vdiff_src_is_seekable (GstBaseSrc * bsrc);
static gboolean gst_vdiff_src_do_seek (GstBaseSrc * bsrc, GstSegment * segment);
static gboolean gst_vdiff_src_event (GstBaseSrc * bsrc, GstEvent * event);
static gboolean gst_vdiff_src_query (GstBaseSrc * bsrc, GstQuery * query);
static void gst_vdiff_src_get_times (GstBaseSrc * bsrc, GstBuffer * buffer,
    GstClockTime * start, GstClockTime * end);
static GstFlowReturn gst_vdiff_src_fill (GstPushSrc * psrc, GstBuffer * buffer);

static void
gst_vdiff_src_class_init (GstVdiffSrcClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSrcClass *basesrc_class = GST_BASE_SRC_CLASS (klass);
  GstPushSrcClass *pushsrc_class = GST_PUSH_SRC_CLASS (klass);
  const GParamFlags ready = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
      GST_PARAM_MUTABLE_READY;
  const GParamFlags playing = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
      GST_PARAM_MUTABLE_PLAYING;

  GST_DEBUG_CATEGORY_INIT (gst_vdiff_src_debug, "vdiffsrc", 0,
      "text-to-video diffusion source");

  gobject_class->set_property = gst_vdiff_src_set_property;
  gobject_class->get_property = gst_vdiff_src_get_property;
  gobject_class->finalize = gst_vdiff_src_finalize;

  /**
   * GstVdiffSrc:model:
   *
   * The diffusion transformer (DiT) checkpoint: a Wan 2.1/2.2 text-to-video
   * model as .safetensors (f32, f16, bf16, fp8, fp8-scaled) or .gguf.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "Path of the diffusion transformer (DiT) checkpoint "
          "(.safetensors or .gguf)", NULL, ready));

  /**
   * GstVdiffSrc:vae:
   *
   * The Wan VAE checkpoint that decodes latents into frames.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_VAE,
      g_param_spec_string ("vae", "VAE",
          "Path of the VAE checkpoint that decodes latents into frames",
          NULL, ready));

  /**
   * GstVdiffSrc:text-encoder:
   *
   * The umT5 text-encoder checkpoint that turns the prompts into embeddings.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_TEXT_ENCODER,
      g_param_spec_string ("text-encoder", "Text encoder",
          "Path of the umT5 text-encoder checkpoint", NULL, ready));

  /**
   * GstVdiffSrc:tokenizer:
   *
   * A SentencePiece .model or tokenizer.json, needed only when the text
   * encoder file carries no tokenizer of its own.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_TOKENIZER,
      g_param_spec_string ("tokenizer", "Tokenizer",
          "Path of a SentencePiece .model or tokenizer.json (default: the "
          "tokenizer inside the text-encoder file)", NULL, ready));

  /**
   * GstVdiffSrc:prompt:
   *
   * What the clip shows.  A change takes effect with the next clip (after
   * a flushing seek to 0, or the next start).
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_PROMPT,
      g_param_spec_string ("prompt", "Prompt",
          "Text prompt describing the clip (takes effect with the next clip)",
          DEFAULT_PROMPT, playing));

  /**
   * GstVdiffSrc:negative-prompt:
   *
   * What the clip should not show; empty uses the model's default negative
   * prompt.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_NEGATIVE_PROMPT,
      g_param_spec_string ("negative-prompt", "Negative prompt",
          "What the clip should not show (empty: the model's default negative "
          "prompt)", DEFAULT_NEGATIVE_PROMPT, playing));

  /**
   * GstVdiffSrc:seed:
   *
   * Seed of the initial noise; the same seed, settings and backend give the
   * same clip.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_SEED,
      g_param_spec_uint64 ("seed", "Seed",
          "Seed of the initial noise (the same seed and settings give the same "
          "clip)", 0, G_MAXUINT64, DEFAULT_SEED, playing));

  /**
   * GstVdiffSrc:steps:
   *
   * Number of sampling steps; 0 uses the model's default (50 for Wan).
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_STEPS,
      g_param_spec_uint ("steps", "Steps",
          "Number of sampling steps (0: the model's default)",
          0, MAX_STEPS, DEFAULT_STEPS, playing));

  /**
   * GstVdiffSrc:guidance:
   *
   * Classifier-free guidance scale; negative uses the model's default
   * (5.0 for Wan 2.1), 1.0 disables the unconditional pass.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_GUIDANCE,
      g_param_spec_double ("guidance", "Guidance",
          "Classifier-free guidance scale (negative: the model's default; "
          "1 disables the unconditional pass)",
          -1.0, MAX_GUIDANCE, DEFAULT_GUIDANCE, playing));

  /**
   * GstVdiffSrc:shift:
   *
   * Shift of the flow-matching sigma schedule; 0 uses the model's default.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_SHIFT,
      g_param_spec_double ("shift", "Shift",
          "Shift of the sigma schedule (0: the model's default)",
          0.0, MAX_SHIFT, DEFAULT_SHIFT, playing));

  /**
   * GstVdiffSrc:sampler:
   *
   * The sampler.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_SAMPLER,
      g_param_spec_enum ("sampler", "Sampler", "The sampler",
          GST_TYPE_VDIFF_SAMPLER, DEFAULT_SAMPLER, playing));

  /**
   * GstVdiffSrc:frames:
   *
   * Length of the clip in frames, of the form 4k+1 (1, 5, 9, ..., 81); 0
   * uses the model's default (81 for Wan).  Other values fail with a
   * RESOURCE SETTINGS error when the element starts.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_FRAMES,
      g_param_spec_uint ("frames", "Frames",
          "Length of the clip in frames, 4k+1 (0: the model's default)",
          0, MAX_FRAMES, DEFAULT_FRAMES, ready));

  /**
   * GstVdiffSrc:device:
   *
   * The compute device: "cpu", "cuda" (the first GPU) or "cuda:N".
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_DEVICE,
      g_param_spec_string ("device", "Device",
          "Compute device: \"cpu\", \"cuda\" or \"cuda:N\"",
          DEFAULT_DEVICE, ready));

  /**
   * GstVdiffSrc:text-encoder-device:
   *
   * Where the text encoder runs: "cpu", "cuda" or "cuda:N"; empty runs it on
   * #GstVdiffSrc:device.  Its embeddings reach the DiT through host memory,
   * so any device works.  A device that does not exist fails with an error
   * naming this property when the element starts.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_TEXT_ENCODER_DEVICE,
      g_param_spec_string ("text-encoder-device", "Text encoder device",
          "Device of the text encoder: \"cpu\", \"cuda\" or \"cuda:N\" "
          "(empty: the compute device)", DEFAULT_MODEL_DEVICE, ready));

  /**
   * GstVdiffSrc:vae-device:
   *
   * Where the VAE decodes: "cpu", "cuda" or "cuda:N"; empty decodes on
   * #GstVdiffSrc:device.  The latent reaches it and the frames leave it
   * through host memory.  A device that does not exist fails with an error
   * naming this property when the element starts.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_VAE_DEVICE,
      g_param_spec_string ("vae-device", "VAE device",
          "Device of the VAE: \"cpu\", \"cuda\" or \"cuda:N\" "
          "(empty: the compute device)", DEFAULT_MODEL_DEVICE, ready));

  /**
   * GstVdiffSrc:allocation:
   *
   * Where the weights live, in the DisTorch2 syntax of ComfyUI-MultiGPU:
   * bytes ("cuda:0,2.5gb;cpu,*"), ratios ("cuda:0,8%;cuda:1,8%;cpu,4%") or
   * a virtual-VRAM budget with donors ("virtual_vram_gb=4;donors=cuda:1,cpu").
   * Empty keeps every weight on the compute device.  A string that does not
   * parse fails with a RESOURCE SETTINGS error that quotes the bad part.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_ALLOCATION,
      g_param_spec_string ("allocation", "Allocation",
          "DisTorch2-style weight placement, e.g. \"cuda:0,8gb;cpu,*\" "
          "(empty: everything on the compute device)",
          DEFAULT_ALLOCATION, ready));

  /**
   * GstVdiffSrc:threads:
   *
   * CPU worker threads; 0 uses all cores.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_THREADS,
      g_param_spec_uint ("threads", "Threads",
          "CPU worker threads (0: all cores)", 0, MAX_THREADS, DEFAULT_THREADS,
          ready));

  /**
   * GstVdiffSrc:release-text-encoder:
   *
   * Free the text encoder once a clip's prompts are encoded (and load it
   * again for the next clip), so the DiT gets its memory.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_RELEASE_TEXT_ENCODER,
      g_param_spec_boolean ("release-text-encoder", "Release text encoder",
          "Free the text encoder after each clip's prompts are encoded "
          "(reloaded for the next clip), leaving its memory to the DiT",
          FALSE, ready));

  /**
   * GstVdiffSrc:release-dit-for-decode:
   *
   * Free the DiT (its weights, its activations and the compute GPU's
   * cached free memory) once a clip is sampled, before the VAE decodes it,
   * so the decode gets that memory.  The cost is a reload of the DiT for
   * every clip after the first; the frames do not change.  Nothing is freed
   * while another vdiffsrc of the process shares the same DiT.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_RELEASE_DIT_FOR_DECODE,
      g_param_spec_boolean ("release-dit-for-decode", "Release DiT for decode",
          "Free the DiT after each clip is sampled, before the VAE decodes "
          "(reloaded for the next clip), leaving its memory to the decode",
          FALSE, ready));

  /**
   * GstVdiffSrc:is-live:
   *
   * Whether to act as a live source, timestamping and syncing frames against
   * the clock.  Generation is rarely real-time, so the default suits
   * offline rendering.
   *
   * Since: 0.1
   */
  g_object_class_install_property (gobject_class, PROP_IS_LIVE,
      g_param_spec_boolean ("is-live", "Is live",
          "Whether to act as a live source", DEFAULT_IS_LIVE, ready));

  gst_element_class_set_static_metadata (element_class,
      "Video diffusion source", "Source/Video",
      "Generates video from a text prompt with Wan 2.1/2.2 latent "
      "video-diffusion models", "gst-vdiff developers");
  gst_element_class_add_static_pad_template (element_class,
      &gst_vdiff_src_template);
  element_class->send_event = GST_DEBUG_FUNCPTR (gst_vdiff_src_send_event);

  basesrc_class->get_caps = GST_DEBUG_FUNCPTR (gst_vdiff_src_get_caps);
  basesrc_class->fixate = GST_DEBUG_FUNCPTR (gst_vdiff_src_fixate);
  basesrc_class->set_caps = GST_DEBUG_FUNCPTR (gst_vdiff_src_set_caps);
  basesrc_class->decide_allocation =
      GST_DEBUG_FUNCPTR (gst_vdiff_src_decide_allocation);
  basesrc_class->start = GST_DEBUG_FUNCPTR (gst_vdiff_src_start);
  basesrc_class->stop = GST_DEBUG_FUNCPTR (gst_vdiff_src_stop);
  basesrc_class->unlock = GST_DEBUG_FUNCPTR (gst_vdiff_src_unlock);
  basesrc_class->unlock_stop = GST_DEBUG_FUNCPTR (gst_vdiff_src_unlock_stop);
  basesrc_class->is_seekable = GST_DEBUG_FUNCPTR (gst_vdiff_src_is_seekable);
  basesrc_class->do_seek = GST_DEBUG_FUNCPTR (gst_vdiff_src_do_seek);
  basesrc_class->event = GST_DEBUG_FUNCPTR (gst_vdiff_src_event);
  basesrc_class->query = GST_DEBUG_FUNCPTR (gst_vdiff_src_query);
  basesrc_class->get_times = GST_DEBUG_FUNCPTR (gst_vdiff_src_get_times);

  pushsrc_class->fill = GST_DEBUG_FUNCPTR (gst_vdiff_src_fill);

  gst_type_mark_as_plugin_api (GST_TYPE_VDIFF_SAMPLER, 0);
}

static void
gst_vdiff_src_init (GstVdiffSrc * self)
{
  self->prompt = g_strdup (DEFAULT_PROMPT);
  self->negative_prompt = g_strdup (DEFAULT_NEGATIVE_PROMPT);
  self->seed = DEFAULT_SEED;
  self->steps = DEFAULT_STEPS;
  self->guidance = DEFAULT_GUIDANCE;
  self->shift = DEFAULT_SHIFT;
  self->sampler = DEFAULT_SAMPLER;
  self->frames = DEFAULT_FRAMES;
  self->device = g_strdup (DEFAULT_DEVICE);
  self->allocation = g_strdup (DEFAULT_ALLOCATION);
  self->threads = DEFAULT_THREADS;

  gst_video_info_init (&self->vinfo);
  g_mutex_init (&self->gen_lock);
  g_cond_init (&self->gen_cond);
  g_queue_init (&self->queue);
  self->gen_status = VD_OK;

  gst_base_src_set_format (GST_BASE_SRC (self), GST_FORMAT_TIME);
  gst_base_src_set_live (GST_BASE_SRC (self), DEFAULT_IS_LIVE);
}

static void
gst_vdiff_src_finalize (GObject * object)
{
  GstVdiffSrc *self = GST_VDIFF_SRC (object);

  /* stop() always ran before the last unref; nothing runs any more. */
  g_warn_if_fail (self->gen_thread == NULL);
  g_queue_clear_full (&self->queue, (GDestroyNotify) g_bytes_unref);
  g_free (self->gen_error);
  g_mutex_clear (&self->gen_lock);
  g_cond_clear (&self->gen_cond);

  g_free (self->model);
  g_free (self->vae);
  g_free (self->text_encoder);
  g_free (self->tokenizer);
  g_free (self->prompt);
  g_free (self->negative_prompt);
  g_free (self->device);
  g_free (self->text_encoder_device);
  g_free (self->vae_device);
  g_free (self->allocation);

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

/* Replace a string property, under the object lock. */
static void
gst_vdiff_src_replace_string (GstVdiffSrc * self, gchar ** field,
    const GValue * value)
{
  GST_OBJECT_LOCK (self);
  g_free (*field);
  *field = g_value_dup_string (value);
  GST_OBJECT_UNLOCK (self);
}

static void
gst_vdiff_src_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstVdiffSrc *self = GST_VDIFF_SRC (object);

  switch (prop_id) {
    case PROP_MODEL:
      gst_vdiff_src_replace_string (self, &self->model, value);
      break;
    case PROP_VAE:
      gst_vdiff_src_replace_string (self, &self->vae, value);
      break;
    case PROP_TEXT_ENCODER:
      gst_vdiff_src_replace_string (self, &self->text_encoder, value);
      break;
    case PROP_TOKENIZER:
      gst_vdiff_src_replace_string (self, &self->tokenizer, value);
      break;
    case PROP_PROMPT:
      gst_vdiff_src_replace_string (self, &self->prompt, value);
      break;
    case PROP_NEGATIVE_PROMPT:
      gst_vdiff_src_replace_string (self, &self->negative_prompt, value);
      break;
    case PROP_SEED:
      GST_OBJECT_LOCK (self);
      self->seed = g_value_get_uint64 (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_STEPS:
      GST_OBJECT_LOCK (self);
      self->steps = g_value_get_uint (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_GUIDANCE:
      GST_OBJECT_LOCK (self);
      self->guidance = g_value_get_double (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_SHIFT:
      GST_OBJECT_LOCK (self);
      self->shift = g_value_get_double (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_SAMPLER:
      GST_OBJECT_LOCK (self);
      self->sampler = g_value_get_enum (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_FRAMES:
      GST_OBJECT_LOCK (self);
      self->frames = g_value_get_uint (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_DEVICE:
      gst_vdiff_src_replace_string (self, &self->device, value);
      break;
    case PROP_TEXT_ENCODER_DEVICE:
      gst_vdiff_src_replace_string (self, &self->text_encoder_device, value);
      break;
    case PROP_VAE_DEVICE:
      gst_vdiff_src_replace_string (self, &self->vae_device, value);
      break;
    case PROP_ALLOCATION:{
      const gchar *allocation = g_value_get_string (value);

      /* Checked again (and reported as an error) in start(); warn early so
       * that a typo shows up where it was made. */
      if (allocation && *allocation
          && vd_allocation_validate (allocation) != VD_OK)
        GST_WARNING_OBJECT (self, "invalid allocation \"%s\": %s", allocation,
            vd_last_error ());
      gst_vdiff_src_replace_string (self, &self->allocation, value);
      break;
    }
    case PROP_THREADS:
      GST_OBJECT_LOCK (self);
      self->threads = g_value_get_uint (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_RELEASE_TEXT_ENCODER:
      GST_OBJECT_LOCK (self);
      self->release_text_encoder = g_value_get_boolean (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_RELEASE_DIT_FOR_DECODE:
      GST_OBJECT_LOCK (self);
      self->release_dit_for_decode = g_value_get_boolean (value);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_IS_LIVE:
      gst_base_src_set_live (GST_BASE_SRC (self), g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_vdiff_src_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstVdiffSrc *self = GST_VDIFF_SRC (object);

  if (prop_id == PROP_IS_LIVE) {
    g_value_set_boolean (value, gst_base_src_is_live (GST_BASE_SRC (self)));
    return;
  }

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model);
      break;
    case PROP_VAE:
      g_value_set_string (value, self->vae);
      break;
    case PROP_TEXT_ENCODER:
      g_value_set_string (value, self->text_encoder);
      break;
    case PROP_TOKENIZER:
      g_value_set_string (value, self->tokenizer);
      break;
    case PROP_PROMPT:
      g_value_set_string (value, self->prompt);
      break;
    case PROP_NEGATIVE_PROMPT:
      g_value_set_string (value, self->negative_prompt);
      break;
    case PROP_SEED:
      g_value_set_uint64 (value, self->seed);
      break;
    case PROP_STEPS:
      g_value_set_uint (value, self->steps);
      break;
    case PROP_GUIDANCE:
      g_value_set_double (value, self->guidance);
      break;
    case PROP_SHIFT:
      g_value_set_double (value, self->shift);
      break;
    case PROP_SAMPLER:
      g_value_set_enum (value, self->sampler);
      break;
    case PROP_FRAMES:
      g_value_set_uint (value, self->frames);
      break;
    case PROP_DEVICE:
      g_value_set_string (value, self->device);
      break;
    case PROP_TEXT_ENCODER_DEVICE:
      g_value_set_string (value, self->text_encoder_device);
      break;
    case PROP_VAE_DEVICE:
      g_value_set_string (value, self->vae_device);
      break;
    case PROP_ALLOCATION:
      g_value_set_string (value, self->allocation);
      break;
    case PROP_THREADS:
      g_value_set_uint (value, self->threads);
      break;
    case PROP_RELEASE_TEXT_ENCODER:
      g_value_set_boolean (value, self->release_text_encoder);
      break;
    case PROP_RELEASE_DIT_FOR_DECODE:
      g_value_set_boolean (value, self->release_dit_for_decode);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ------------------------------------------------------------------------ */
/* Errors */

/* Post an engine failure as an element error in the GStreamer domain that
 * matches it.  @what says what the element was doing; @message is the
 * engine's own text (vd_last_error() of the failing thread).  While loading
 * (@loading), device failures are LIBRARY INIT and read failures OPEN_READ;
 * during generation RESOURCE FAILED and RESOURCE READ. */
static void
gst_vdiff_src_post_engine_error (GstVdiffSrc * self, vd_status status,
    gboolean loading, const gchar * what, const gchar * message)
{
  const gchar *name = vd_status_name (status);

  if (message == NULL || *message == '\0')
    message = name;

  switch (status) {
    case VD_ERR_NOT_FOUND:
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("%s: %s", what, message),
          ("libvdiff status: %s", name));
      break;
    case VD_ERR_IO:
      if (loading)
        GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ, ("%s: %s", what,
                message), ("libvdiff status: %s", name));
      else
        GST_ELEMENT_ERROR (self, RESOURCE, READ, ("%s: %s", what, message),
            ("libvdiff status: %s", name));
      break;
    case VD_ERR_FORMAT:
    case VD_ERR_UNSUPPORTED:
    case VD_ERR_SHAPE:
      GST_ELEMENT_ERROR (self, STREAM, WRONG_TYPE, ("%s: %s", what, message),
          ("libvdiff status: %s", name));
      break;
    case VD_ERR_INVALID_ARGUMENT:
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s: %s", what, message),
          ("libvdiff status: %s", name));
      break;
    case VD_ERR_OUT_OF_MEMORY:
      GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT, ("%s: %s", what,
              message), ("libvdiff status: %s", name));
      break;
    case VD_ERR_DEVICE:
      if (loading)
        GST_ELEMENT_ERROR (self, LIBRARY, INIT, ("%s: %s", what, message),
            ("libvdiff status: %s", name));
      else
        GST_ELEMENT_ERROR (self, RESOURCE, FAILED, ("%s: %s", what, message),
            ("libvdiff status: %s", name));
      break;
    case VD_ERR_CANCELLED:
      GST_ELEMENT_ERROR (self, STREAM, FAILED, ("%s: %s", what, message),
          ("libvdiff status: %s", name));
      break;
    default:
      if (loading)
        GST_ELEMENT_ERROR (self, LIBRARY, FAILED, ("%s: %s", what, message),
            ("libvdiff status: %s", name));
      else
        GST_ELEMENT_ERROR (self, STREAM, FAILED, ("%s: %s", what, message),
            ("libvdiff status: %s", name));
      break;
  }
}

/* ------------------------------------------------------------------------ */
/* Caps */

static GstCaps *
gst_vdiff_src_get_caps (GstBaseSrc * bsrc, GstCaps * filter)
{
  GstVdiffSrc *self = GST_VDIFF_SRC (bsrc);
  GstCaps *caps;
  gint multiple = 0;

  caps = gst_pad_get_pad_template_caps (GST_BASE_SRC_PAD (bsrc));

  GST_OBJECT_LOCK (self);
  if (self->have_info && self->model_info.size_multiple > 0)
    multiple = self->model_info.size_multiple;
  GST_OBJECT_UNLOCK (self);

  /* Once the model is loaded it says which sizes it can make. */
  if (multiple > 0 && multiple != VDIFF_SIZE_MULTIPLE) {
    GValue range = G_VALUE_INIT;
    gint max = VDIFF_MAX_SIZE - VDIFF_MAX_SIZE % multiple;
    guint i;

    g_value_init (&range, GST_TYPE_INT_RANGE);
    gst_value_set_int_range_step (&range, multiple, max, multiple);
    caps = gst_caps_make_writable (caps);
    for (i = 0; i < gst_caps_get_size (caps); i++) {
      GstStructure *s = gst_caps_get_structure (caps, i);

      gst_structure_set_value (s, "width", &range);
      gst_structure_set_value (s, "height", &range);
    }
    g_value_unset (&range);
  }

  if (filter) {
    GstCaps *tmp = gst_caps_intersect_full (filter, caps,
        GST_CAPS_INTERSECT_FIRST);

    gst_caps_unref (caps);
    caps = tmp;
  }

  GST_LOG_OBJECT (self, "caps %" GST_PTR_FORMAT, caps);
  return caps;
}

static GstCaps *
gst_vdiff_src_fixate (GstBaseSrc * bsrc, GstCaps * caps)
{
  GstVdiffSrc *self = GST_VDIFF_SRC (bsrc);
  GstStructure *s;
  gint width = VDIFF_DEFAULT_WIDTH, height = VDIFF_DEFAULT_HEIGHT;
  gint fps = VDIFF_DEFAULT_FPS, multiple = VDIFF_SIZE_MULTIPLE;
  const gchar *format;

  GST_OBJECT_LOCK (self);
  if (self->have_info) {
    if (self->model_info.width > 0 && self->model_info.height > 0) {
      width = self->model_info.width;
      height = self->model_info.height;
    }
    if (self->model_info.fps > 0)
      fps = self->model_info.fps;
    if (self->model_info.size_multiple > 0)
      multiple = self->model_info.size_multiple;
  }
  GST_OBJECT_UNLOCK (self);

  width = MAX (multiple, width / multiple * multiple);
  height = MAX (multiple, height / multiple * multiple);

  caps = gst_caps_truncate (caps);
  caps = gst_caps_make_writable (caps);
  s = gst_caps_get_structure (caps, 0);

  gst_structure_fixate_field_nearest_int (s, "width", width);
  gst_structure_fixate_field_nearest_int (s, "height", height);
  gst_structure_fixate_field_nearest_fraction (s, "framerate", fps, 1);
  if (gst_structure_has_field (s, "pixel-aspect-ratio"))
    gst_structure_fixate_field_nearest_fraction (s, "pixel-aspect-ratio", 1,
        1);
  else
    gst_structure_set (s, "pixel-aspect-ratio", GST_TYPE_FRACTION, 1, 1, NULL);

  caps = GST_BASE_SRC_CLASS (parent_class)->fixate (bsrc, caps);

  /* Say which matrix the YUV output uses rather than leave it to the
   * size-dependent default (BT.709 above 576 lines). */
  s = gst_caps_get_structure (caps, 0);
  format = gst_structure_get_string (s, "format");
  if (format && !gst_structure_has_field (s, "colorimetry")) {
    const GstVideoFormatInfo *finfo =
        gst_video_format_get_info (gst_video_format_from_string (format));

    if (finfo && GST_VIDEO_FORMAT_INFO_IS_YUV (finfo)) {
      caps = gst_caps_make_writable (caps);
      s = gst_caps_get_structure (caps, 0);
      gst_structure_set (s, "colorimetry", G_TYPE_STRING,
          GST_VIDEO_COLORIMETRY_BT601, NULL);
    }
  }

  GST_DEBUG_OBJECT (self, "fixated to %" GST_PTR_FORMAT, caps);
  return caps;
}

/* Fixed-point (16.16) RGB→YUV coefficients for the matrix and range of the
 * negotiated format; BT.601 when the caps name no YUV matrix. */
static void
gst_vdiff_src_setup_yuv (GstVdiffSrc * self, const GstVideoInfo * info)
{
  gdouble kr, kb, kg;
  gint offset[GST_VIDEO_MAX_COMPONENTS], scale[GST_VIDEO_MAX_COMPONENTS];
  gdouble y[3], u[3], v[3];
  gint i;

  if (!gst_video_color_matrix_get_Kr_Kb (info->colorimetry.matrix, &kr, &kb)) {
    kr = 0.299;
    kb = 0.114;
  }
  kg = 1.0 - kr - kb;
  gst_video_color_range_offsets (info->colorimetry.range, info->finfo, offset,
      scale);

  y[0] = kr;
  y[1] = kg;
  y[2] = kb;
  u[0] = -kr / (2.0 * (1.0 - kb));
  u[1] = -kg / (2.0 * (1.0 - kb));
  u[2] = 0.5;
  v[0] = 0.5;
  v[1] = -kg / (2.0 * (1.0 - kr));
  v[2] = -kb / (2.0 * (1.0 - kr));

  for (i = 0; i < 3; i++) {
    self->yuv_coef[0][i] = (gint) lround (y[i] * scale[0] / 255.0 * 65536.0);
    self->yuv_coef[1][i] = (gint) lround (u[i] * scale[1] / 255.0 * 65536.0);
    self->yuv_coef[2][i] = (gint) lround (v[i] * scale[2] / 255.0 * 65536.0);
    self->yuv_offset[i] = offset[i];
  }
}

static gboolean
gst_vdiff_src_set_caps (GstBaseSrc * bsrc, GstCaps * caps)
{
  GstVdiffSrc *self = GST_VDIFF_SRC (bsrc);
  GstVideoInfo info;
  gint multiple = VDIFF_SIZE_MULTIPLE;
  gboolean size_change;

  if (!gst_video_info_from_caps (&info, caps))
    goto parse_failed;
  if (info.fps_n <= 0 || info.fps_d <= 0)
    goto no_framerate;

  GST_OBJECT_LOCK (self);
  if (self->have_info && self->model_info.size_multiple > 0)
    multiple = self->model_info.size_multiple;
  GST_OBJECT_UNLOCK (self);

  if (GST_VIDEO_INFO_WIDTH (&info) % multiple != 0
      || GST_VIDEO_INFO_HEIGHT (&info) % multiple != 0)
    goto bad_size;

  g_mutex_lock (&self->gen_lock);
  size_change = self->gen_thread != NULL
      && (self->gen_width != GST_VIDEO_INFO_WIDTH (&info)
      || self->gen_height != GST_VIDEO_INFO_HEIGHT (&info));
  g_mutex_unlock (&self->gen_lock);
  if (size_change)
    goto size_change;

  GST_OBJECT_LOCK (self);
  self->vinfo = info;
  GST_OBJECT_UNLOCK (self);
  if (GST_VIDEO_INFO_IS_YUV (&info))
    gst_vdiff_src_setup_yuv (self, &info);

  GST_DEBUG_OBJECT (self, "configured %" GST_PTR_FORMAT, caps);
  return TRUE;

parse_failed:
  {
    GST_ERROR_OBJECT (self, "could not parse caps %" GST_PTR_FORMAT, caps);
    return FALSE;
  }
no_framerate:
  {
    GST_ERROR_OBJECT (self, "caps %" GST_PTR_FORMAT " have no usable "
        "framerate", caps);
    return FALSE;
  }
bad_size:
  {
    GST_ERROR_OBJECT (self, "%dx%d is not a multiple of %d as the model "
        "requires", GST_VIDEO_INFO_WIDTH (&info),
        GST_VIDEO_INFO_HEIGHT (&info), multiple);
    return FALSE;
  }
size_change:
  {
    GST_ERROR_OBJECT (self, "cannot change the size to %dx%d while a %dx%d "
        "clip is generated", GST_VIDEO_INFO_WIDTH (&info),
        GST_VIDEO_INFO_HEIGHT (&info), self->gen_width, self->gen_height);
    return FALSE;
  }
}

static gboolean
gst_vdiff_src_decide_allocation (GstBaseSrc * bsrc, GstQuery * query)
{
  GstVdiffSrc *self = GST_VDIFF_SRC (bsrc);
  GstBufferPool *pool = NULL;
  GstStructure *config;
  GstCaps *caps = NULL;
  guint size, min, max;
  gboolean update;

  gst_query_parse_allocation (query, &caps, NULL);

  if (gst_query_get_n_allocation_pools (query) > 0) {
    gst_query_parse_nth_allocation_pool (query, 0, &pool, &size, &min, &max);
    size = MAX (size, GST_VIDEO_INFO_SIZE (&self->vinfo));
    update = TRUE;
  } else {
    size = GST_VIDEO_INFO_SIZE (&self->vinfo);
    min = max = 0;
    update = FALSE;
  }

  if (pool == NULL)
    pool = gst_video_buffer_pool_new ();

  config = gst_buffer_pool_get_config (pool);
  gst_buffer_pool_config_set_params (config, caps, size, min, max);
  if (gst_query_find_allocation_meta (query, GST_VIDEO_META_API_TYPE, NULL))
    gst_buffer_pool_config_add_option (config,
        GST_BUFFER_POOL_OPTION_VIDEO_META);
  if (!gst_buffer_pool_set_config (pool, config)) {
    config = gst_buffer_pool_get_config (pool);
    if (!gst_buffer_pool_config_validate_params (config, caps, size, min, max)) {
      gst_structure_free (config);
      gst_object_unref (pool);
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
          ("Could not configure a buffer pool for %" GST_PTR_FORMAT, caps),
          (NULL));
      return FALSE;
    }
    if (!gst_buffer_pool_set_config (pool, config)) {
      gst_object_unref (pool);
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
          ("Could not configure a buffer pool for %" GST_PTR_FORMAT, caps),
          (NULL));
      return FALSE;
    }
  }

  if (update)
    gst_query_set_nth_allocation_pool (query, 0, pool, size, min, max);
  else
    gst_query_add_allocation_pool (query, pool, size, min, max);
  gst_object_unref (pool);

  return GST_BASE_SRC_CLASS (parent_class)->decide_allocation (bsrc, query);
}

/* ------------------------------------------------------------------------ */
/* Loading */

/* The engine's last error, with the engine option that names a device
 * ("vae_device cuda:7: ...") spelled as the property the user set
 * ("vae-device cuda:7: ...").  Free with g_free(). */
static gchar *
gst_vdiff_src_engine_message_for_properties (void)
{
  static const gchar *const names[][2] = {
    {"text_encoder_device ", "text-encoder-device "},
    {"vae_device ", "vae-device "},
  };
  const gchar *message = vd_last_error ();
  guint i;

  for (i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_str_has_prefix (message, names[i][0]))
      return g_strconcat (names[i][1], message + strlen (names[i][0]), NULL);
  return g_strdup (message);
}

/* A GST_MESSAGE_PROGRESS about loading the models (code "open"). */
static void
gst_vdiff_src_post_progress (GstVdiffSrc * self, GstProgressType type,
    const gchar * format, ...) G_GNUC_PRINTF (3, 4);

static void
gst_vdiff_src_post_progress (GstVdiffSrc * self, GstProgressType type,
    const gchar * format, ...)
{
  va_list args;
  gchar *text;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);

  gst_element_post_message (GST_ELEMENT_CAST (self),
      gst_message_new_progress (GST_OBJECT_CAST (self), type, "open", text));
  g_free (text);
}

static gboolean
gst_vdiff_src_start (GstBaseSrc * bsrc)
{
  GstVdiffSrc *self = GST_VDIFF_SRC (bsrc);
  vd_pipeline_options opt = vd_pipeline_options_default ();
  vd_pipeline *pipeline = NULL;
  vd_request *request = NULL;
  vd_pipeline_info info;
  vd_status status;
  gchar *model, *vae, *text_encoder, *tokenizer, *device, *allocation;
  gchar *text_encoder_device, *vae_device;
  guint threads, frames;
  gboolean release_text_encoder, release_dit_for_decode;
  gint64 t0;

  GST_OBJECT_LOCK (self);
  model = g_strdup (self->model);
  vae = g_strdup (self->vae);
  text_encoder = g_strdup (self->text_encoder);
  tokenizer = g_strdup (self->tokenizer);
  device = g_strdup (self->device);
  text_encoder_device = g_strdup (self->text_encoder_device);
  vae_device = g_strdup (self->vae_device);
  allocation = g_strdup (self->allocation);
  threads = self->threads;
  frames = self->frames;
  release_text_encoder = self->release_text_encoder;
  release_dit_for_decode = self->release_dit_for_decode;
  GST_OBJECT_UNLOCK (self);

  if (model == NULL || *model == '\0')
    goto no_model;
  if (vae == NULL || *vae == '\0')
    goto no_vae;
  if (text_encoder == NULL || *text_encoder == '\0')
    goto no_text_encoder;
  if (allocation && *allocation) {
    status = vd_allocation_validate (allocation);
    if (status != VD_OK)
      goto bad_allocation;
  }

  opt.dit = model;
  opt.vae = vae;
  opt.text_encoder = text_encoder;
  opt.tokenizer = (tokenizer && *tokenizer) ? tokenizer : NULL;
  opt.device = (device && *device) ? device : DEFAULT_DEVICE;
  /* NULL: the compute device */
  opt.text_encoder_device = (text_encoder_device && *text_encoder_device) ?
      text_encoder_device : NULL;
  opt.vae_device = (vae_device && *vae_device) ? vae_device : NULL;
  opt.allocation = (allocation && *allocation) ? allocation : NULL;
  opt.threads = (int) threads;
  opt.release_text_encoder = release_text_encoder;
  opt.release_dit_for_decode = release_dit_for_decode;

  gst_vdiff_src_post_progress (self, GST_PROGRESS_TYPE_START,
      "Loading %s on %s", model, opt.device);
  GST_INFO_OBJECT (self, "loading dit=%s vae=%s text-encoder=%s device=%s "
      "text-encoder-device=%s vae-device=%s allocation=%s "
      "release-dit-for-decode=%d", model, vae, text_encoder, opt.device,
      GST_STR_NULL (opt.text_encoder_device), GST_STR_NULL (opt.vae_device),
      GST_STR_NULL (opt.allocation), release_dit_for_decode);
  t0 = g_get_monotonic_time ();

  status = vd_pipeline_open (&opt, &pipeline);
  if (status != VD_OK)
    goto open_failed;
  status = vd_pipeline_get_info (pipeline, &info);
  if (status != VD_OK)
    goto open_failed;

  if (!info.has_text_encoder)
    goto no_text_encoder_loaded;
  if (frames != 0 && info.frame_multiple > 0
      && (frames - 1) % (guint) info.frame_multiple != 0)
    goto bad_frames;

  status = vd_request_new (&request);
  if (status != VD_OK)
    goto open_failed;

  gst_vdiff_src_post_progress (self, GST_PROGRESS_TYPE_COMPLETE,
      "Loaded %s (%.*f %s parameters) in %.1f s", info.dit_name,
      info.dit_params >= 1000000000 ? 2 : 1,
      info.dit_params >= 1000000000 ? info.dit_params / 1e9 :
      info.dit_params / 1e6, info.dit_params >= 1000000000 ? "B" : "M",
      (g_get_monotonic_time () - t0) / 1e6);
  GST_INFO_OBJECT (self, "loaded %s: %" G_GINT64_FORMAT " parameters, "
      "default %dx%d, %d frames at %d fps, %d steps", info.dit_name,
      (gint64) info.dit_params, info.width, info.height, info.frames, info.fps,
      info.steps);

  self->pipeline = pipeline;
  self->request = request;
  self->n_frames = 0;
  GST_OBJECT_LOCK (self);
  self->model_info = info;
  self->have_info = TRUE;
  self->clip_frames = frames ? (gint) frames : info.frames;
  gst_video_info_init (&self->vinfo);
  GST_OBJECT_UNLOCK (self);

  g_free (model);
  g_free (vae);
  g_free (text_encoder);
  g_free (tokenizer);
  g_free (device);
  g_free (text_encoder_device);
  g_free (vae_device);
  g_free (allocation);
  return TRUE;

no_model:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No model file given."),
        ("Set the 'model' property to a Wan text-to-video DiT checkpoint."));
    goto failed;
  }
no_vae:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No VAE file given."),
        ("Set the 'vae' property to a Wan VAE checkpoint."));
    goto failed;
  }
no_text_encoder:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No text encoder file given."),
        ("Set the 'text-encoder' property to a umT5 checkpoint."));
    goto failed;
  }
bad_allocation:
  {
    gst_vdiff_src_post_engine_error (self, VD_ERR_INVALID_ARGUMENT, TRUE,
        "Invalid allocation", vd_last_error ());
    goto failed;
  }
open_failed:
  {
    gchar *message = gst_vdiff_src_engine_message_for_properties ();

    gst_vdiff_src_post_progress (self, GST_PROGRESS_TYPE_ERROR,
        "Could not load the models");
    gst_vdiff_src_post_engine_error (self, status, TRUE,
        "Could not load the models", message);
    g_free (message);
    goto failed;
  }
no_text_encoder_loaded:
  {
    gst_vdiff_src_post_progress (self, GST_PROGRESS_TYPE_ERROR,
        "Could not load the models");
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("The model set has no text encoder, so prompts cannot be used."),
        ("Set the 'text-encoder' property to a umT5 checkpoint."));
    goto failed;
  }
bad_frames:
  {
    gst_vdiff_src_post_progress (self, GST_PROGRESS_TYPE_ERROR,
        "Could not load the models");
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Invalid frame count %u: the model makes clips of %dk+1 frames "
            "(e.g. %u or %u).", frames, info.frame_multiple,
            (frames - 1) / info.frame_multiple * info.frame_multiple + 1,
            ((frames - 1) / info.frame_multiple + 1) * info.frame_multiple +
            1), ("frames=%u", frames));
    goto failed;
  }
failed:
  {
    if (pipeline)
      vd_pipeline_close (pipeline);
    g_free (model);
    g_free (vae);
    g_free (text_encoder);
    g_free (tokenizer);
    g_free (device);
    g_free (text_encoder_device);
    g_free (vae_device);
    g_free (allocation);
    return FALSE;
  }
}

/* ------------------------------------------------------------------------ */
/* Generation */

static void
gst_vdiff_src_on_progress (void *user, const vd_progress * progress)
{
  GstVdiffSrc *self = user;
  GstStructure *s;

  GST_LOG_OBJECT (self, "%s %d/%d, %.2f s elapsed, eta %.2f s",
      vd_stage_name (progress->stage), progress->step, progress->total,
      progress->elapsed, progress->eta);

  s = gst_structure_new ("vdiff-progress",
      "stage", G_TYPE_STRING, vd_stage_name (progress->stage),
      "step", G_TYPE_INT, progress->step,
      "total", G_TYPE_INT, progress->total,
      "elapsed", G_TYPE_DOUBLE, progress->elapsed,
      "eta", G_TYPE_DOUBLE, progress->eta, NULL);
  gst_element_post_message (GST_ELEMENT_CAST (self),
      gst_message_new_element (GST_OBJECT_CAST (self), s));
}

static int
gst_vdiff_src_on_frames (void *user, const uint8_t * rgb, int first, int n,
    int width, int height)
{
  GstVdiffSrc *self = user;
  gsize frame_size = (gsize) width * height * 3;
  gboolean stop;
  int i;

  GST_DEBUG_OBJECT (self, "frames %d..%d decoded", first, first + n - 1);

  g_mutex_lock (&self->gen_lock);
  stop = self->gen_cancel;
  if (!stop && (width != self->gen_width || height != self->gen_height)) {
    GST_ERROR_OBJECT (self, "engine delivered %dx%d frames, expected %dx%d",
        width, height, self->gen_width, self->gen_height);
    stop = TRUE;
  }
  if (!stop) {
    for (i = 0; i < n; i++)
      g_queue_push_tail (&self->queue, g_bytes_new (rgb + i * frame_size,
              frame_size));
    g_cond_broadcast (&self->gen_cond);
  }
  g_mutex_unlock (&self->gen_lock);

  return stop ? 1 : 0;
}

static gpointer
gst_vdiff_src_generate (gpointer data)
{
  GstVdiffJob *job = data;
  GstVdiffSrc *self = job->self;
  gchar *error = NULL;
  vd_status status;

  GST_INFO_OBJECT (self, "generating %dx%d, %d frames, seed %" G_GUINT64_FORMAT
      ", prompt \"%s\"", job->params.width, job->params.height,
      job->params.frames, job->params.seed, job->prompt);

  status = vd_pipeline_generate (job->pipeline, &job->params, job->request);
  if (status != VD_OK)
    error = g_strdup (vd_last_error ());

  GST_DEBUG_OBJECT (self, "generation finished: %s", vd_status_name (status));

  g_mutex_lock (&self->gen_lock);
  self->gen_done = TRUE;
  self->gen_status = status;
  g_free (self->gen_error);
  self->gen_error = error;
  g_cond_broadcast (&self->gen_cond);
  g_mutex_unlock (&self->gen_lock);

  g_free (job->prompt);
  g_free (job->negative_prompt);
  g_free (job);
  return NULL;
}

/* Start a clip with the current settings at the negotiated size.  Called
 * from the streaming thread with no generation thread running. */
static gboolean
gst_vdiff_src_start_generation (GstVdiffSrc * self)
{
  GstVdiffJob *job = g_new0 (GstVdiffJob, 1);
  vd_request_params *p = &job->params;
  GError *err = NULL;
  GThread *thread;

  job->self = self;
  job->pipeline = self->pipeline;
  job->request = self->request;
  *p = vd_request_params_default ();

  GST_OBJECT_LOCK (self);
  job->prompt = g_strdup (self->prompt ? self->prompt : "");
  if (self->negative_prompt && *self->negative_prompt)
    job->negative_prompt = g_strdup (self->negative_prompt);
  p->seed = self->seed;
  p->steps = (int) self->steps;
  p->guidance = self->guidance;
  p->shift = self->shift;
  p->sampler = self->sampler == GST_VDIFF_SAMPLER_EULER ? VD_SAMPLE_EULER :
      VD_SAMPLE_UNIPC;
  p->frames = self->clip_frames;
  p->width = GST_VIDEO_INFO_WIDTH (&self->vinfo);
  p->height = GST_VIDEO_INFO_HEIGHT (&self->vinfo);
  GST_OBJECT_UNLOCK (self);

  p->prompt = job->prompt;
  p->negative_prompt = job->negative_prompt;
  p->on_progress = gst_vdiff_src_on_progress;
  p->on_frames = gst_vdiff_src_on_frames;
  p->user = self;

  vd_request_reset (self->request);

  g_mutex_lock (&self->gen_lock);
  self->gen_width = p->width;
  self->gen_height = p->height;
  self->gen_done = FALSE;
  self->gen_cancel = FALSE;
  self->gen_status = VD_OK;
  g_clear_pointer (&self->gen_error, g_free);
  thread = g_thread_try_new ("vdiffsrc-gen", gst_vdiff_src_generate, job,
      &err);
  self->gen_thread = thread;
  g_mutex_unlock (&self->gen_lock);

  if (thread == NULL) {
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED,
        ("Could not start the generation thread: %s", err->message), (NULL));
    g_error_free (err);
    g_free (job->prompt);
    g_free (job->negative_prompt);
    g_free (job);
    return FALSE;
  }
  return TRUE;
}

/* Cancel and join the generation thread, if any, and drop its frames.
 * Returns within one transformer block of the running generation. */
static void
gst_vdiff_src_stop_generation (GstVdiffSrc * self)
{
  GThread *thread;

  g_mutex_lock (&self->gen_lock);
  thread = self->gen_thread;
  self->gen_thread = NULL;
  if (thread) {
    self->gen_cancel = TRUE;
    if (self->request)
      vd_request_cancel (self->request);
  }
  g_cond_broadcast (&self->gen_cond);
  g_mutex_unlock (&self->gen_lock);

  if (thread) {
    gint64 t0 = g_get_monotonic_time ();

    g_thread_join (thread);
    GST_DEBUG_OBJECT (self, "generation thread joined after %.3f s",
        (g_get_monotonic_time () - t0) / 1e6);
  }

  g_mutex_lock (&self->gen_lock);
  g_queue_clear_full (&self->queue, (GDestroyNotify) g_bytes_unref);
  self->gen_done = FALSE;
  self->gen_cancel = FALSE;
  self->gen_status = VD_OK;
  g_clear_pointer (&self->gen_error, g_free);
  g_mutex_unlock (&self->gen_lock);
}

static gboolean
gst_vdiff_src_stop (GstBaseSrc * bsrc)
{
  GstVdiffSrc *self = GST_VDIFF_SRC (bsrc);

  gst_vdiff_src_stop_generation (self);

  GST_OBJECT_LOCK (self);
  self->have_info = FALSE;
  self->clip_frames = 0;
  gst_video_info_init (&self->vinfo);
  GST_OBJECT_UNLOCK (self);

  if (self->request) {
    vd_request_free (self->request);
    self->request = NULL;
  }
  if (self->pipeline) {
    vd_pipeline_close (self->pipeline);
    self->pipeline = NULL;
  }
  self->n_frames = 0;

  GST_DEBUG_OBJECT (self, "stopped");
  return TRUE;
}

static gboolean
gst_vdiff_src_unlock (GstBaseSrc * bsrc)
{
  GstVdiffSrc *self = GST_VDIFF_SRC (bsrc);

  GST_LOG_OBJECT (self, "unlock");
  g_mutex_lock (&self->gen_lock);
  self->flushing = TRUE;
  g_cond_broadcast (&self->gen_cond);
  g_mutex_unlock (&self->gen_lock);
  return TRUE;
}

static gboolean
gst_vdiff_src_unlock_stop (GstBaseSrc * bsrc)
{
  GstVdiffSrc *self = GST_VDIFF_SRC (bsrc);

  GST_LOG_OBJECT (self, "unlock stop");
  g_mutex_lock (&self->gen_lock);
  self->flushing = FALSE;
  g_mutex_unlock (&self->gen_lock);
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Seeking and queries */

static gboolean
gst_vdiff_src_is_seekable (GstBaseSrc * bsrc)
{
  /* Only back to the start, which makes the clip again. */
  return TRUE;
}

/* A seek we can do: back to the start at normal rate. */
static gboolean
gst_vdiff_src_seek_supported (GstVdiffSrc * self, GstEvent * event)
{
  GstFormat format;
  GstSeekType start_type, stop_type;
  gint64 start, stop;
  gdouble rate;

  gst_event_parse_seek (event, &rate, &format, NULL, &start_type, &start,
      &stop_type, &stop);

  if ((format == GST_FORMAT_TIME || format == GST_FORMAT_DEFAULT)
      && rate == 1.0 && start_type == GST_SEEK_TYPE_SET && start == 0)
    return TRUE;

  GST_WARNING_OBJECT (self, "refusing %" GST_PTR_FORMAT ": a generated clip "
      "can only restart from 0 at rate 1", event);
  return FALSE;
}

static gboolean
gst_vdiff_src_send_event (GstElement * element, GstEvent * event)
{
  GstVdiffSrc *self = GST_VDIFF_SRC (element);

  if (GST_EVENT_TYPE (event) == GST_EVENT_SEEK
      && !gst_vdiff_src_seek_supported (self, event)) {
    gst_event_unref (event);
    return FALSE;
  }
  return GST_ELEMENT_CLASS (parent_class)->send_event (element, event);
}

static gboolean
gst_vdiff_src_event (GstBaseSrc * bsrc, GstEvent * event)
{
  GstVdiffSrc *self = GST_VDIFF_SRC (bsrc);

  /* Refuse before basesrc flushes the pipeline. */
  if (GST_EVENT_TYPE (event) == GST_EVENT_SEEK
      && !gst_vdiff_src_seek_supported (self, event))
    return FALSE;

  return GST_BASE_SRC_CLASS (parent_class)->event (bsrc, event);
}

static gboolean
gst_vdiff_src_do_seek (GstBaseSrc * bsrc, GstSegment * segment)
{
  GstVdiffSrc *self = GST_VDIFF_SRC (bsrc);

  if (segment->rate != 1.0 || segment->start != 0) {
    GST_WARNING_OBJECT (self, "refusing seek to %" GST_SEGMENT_FORMAT,
        segment);
    return FALSE;
  }

  GST_DEBUG_OBJECT (self, "restarting the clip");
  gst_vdiff_src_stop_generation (self);
  self->n_frames = 0;
  segment->time = 0;
  segment->position = 0;
  return TRUE;
}

static gboolean
gst_vdiff_src_query (GstBaseSrc * bsrc, GstQuery * query)
{
  GstVdiffSrc *self = GST_VDIFF_SRC (bsrc);
  gboolean res = FALSE;

  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_ACCEPT_CAPS:
      /* basesrc leaves this unanswered (which accepts anything); answer
       * from our caps so that a size the model cannot make is refused. */
      res = gst_pad_query_default (GST_BASE_SRC_PAD (bsrc), GST_OBJECT (bsrc),
          query);
      break;
    case GST_QUERY_CONVERT:{
      GstFormat src_fmt, dest_fmt;
      gint64 src_val, dest_val;

      gst_query_parse_convert (query, &src_fmt, &src_val, &dest_fmt, &dest_val);
      GST_OBJECT_LOCK (self);
      res = gst_video_info_convert (&self->vinfo, src_fmt, src_val, dest_fmt,
          &dest_val);
      GST_OBJECT_UNLOCK (self);
      if (res)
        gst_query_set_convert (query, src_fmt, src_val, dest_fmt, dest_val);
      break;
    }
    case GST_QUERY_DURATION:{
      GstFormat format;
      gint64 frames;
      gint fps_n, fps_d;

      gst_query_parse_duration (query, &format, NULL);
      GST_OBJECT_LOCK (self);
      frames = self->have_info ? self->clip_frames : -1;
      if (frames > 0 && bsrc->num_buffers >= 0 && bsrc->num_buffers < frames)
        frames = bsrc->num_buffers;
      fps_n = self->vinfo.fps_n;
      fps_d = self->vinfo.fps_d;
      if (fps_n <= 0 && self->have_info) {
        fps_n = self->model_info.fps;
        fps_d = 1;
      }
      GST_OBJECT_UNLOCK (self);

      if (frames < 0) {
        res = GST_BASE_SRC_CLASS (parent_class)->query (bsrc, query);
      } else if (format == GST_FORMAT_DEFAULT) {
        gst_query_set_duration (query, format, frames);
        res = TRUE;
      } else if (format == GST_FORMAT_TIME && fps_n > 0) {
        gst_query_set_duration (query, format,
            gst_util_uint64_scale (frames, (guint64) fps_d * GST_SECOND,
                fps_n));
        res = TRUE;
      }
      break;
    }
    default:
      res = GST_BASE_SRC_CLASS (parent_class)->query (bsrc, query);
      break;
  }
  return res;
}

static void
gst_vdiff_src_get_times (GstBaseSrc * bsrc, GstBuffer * buffer,
    GstClockTime * start, GstClockTime * end)
{
  /* Live: sync on the timestamps.  Otherwise as fast as downstream takes. */
  if (gst_base_src_is_live (bsrc)) {
    GstClockTime timestamp = GST_BUFFER_PTS (buffer);

    if (GST_CLOCK_TIME_IS_VALID (timestamp)) {
      GstClockTime duration = GST_BUFFER_DURATION (buffer);

      if (GST_CLOCK_TIME_IS_VALID (duration))
        *end = timestamp + duration;
      *start = timestamp;
    }
  } else {
    *start = GST_CLOCK_TIME_NONE;
    *end = GST_CLOCK_TIME_NONE;
  }
}

/* ------------------------------------------------------------------------ */
/* Frames */

static inline guint8
clamp_u8 (gint v)
{
  return (guint8) CLAMP (v, 0, 255);
}

static void
gst_vdiff_src_rgb_to_i420 (GstVdiffSrc * self, const guint8 * rgb,
    GstVideoFrame * frame)
{
  const gint width = GST_VIDEO_FRAME_WIDTH (frame);
  const gint height = GST_VIDEO_FRAME_HEIGHT (frame);
  const gint (*c)[3] = (const gint (*)[3]) self->yuv_coef;
  const gint *off = self->yuv_offset;
  guint8 *yp = GST_VIDEO_FRAME_COMP_DATA (frame, 0);
  guint8 *up = GST_VIDEO_FRAME_COMP_DATA (frame, 1);
  guint8 *vp = GST_VIDEO_FRAME_COMP_DATA (frame, 2);
  const gint ys = GST_VIDEO_FRAME_COMP_STRIDE (frame, 0);
  const gint us = GST_VIDEO_FRAME_COMP_STRIDE (frame, 1);
  const gint vs = GST_VIDEO_FRAME_COMP_STRIDE (frame, 2);
  gint x, y;

  for (y = 0; y < height; y++) {
    const guint8 *s = rgb + (gsize) y * width * 3;
    guint8 *d = yp + (gsize) y * ys;

    for (x = 0; x < width; x++, s += 3)
      d[x] = clamp_u8 (((c[0][0] * s[0] + c[0][1] * s[1] + c[0][2] * s[2] +
                  32768) >> 16) + off[0]);
  }

  /* Chroma from the mean of each 2×2 block (the edge rows and columns
   * repeat when the size is odd). */
  for (y = 0; y < (height + 1) / 2; y++) {
    const guint8 *r0 = rgb + (gsize) (2 * y) * width * 3;
    const guint8 *r1 = rgb + (gsize) MIN (2 * y + 1, height - 1) * width * 3;
    guint8 *du = up + (gsize) y * us;
    guint8 *dv = vp + (gsize) y * vs;

    for (x = 0; x < (width + 1) / 2; x++) {
      const gint x0 = 2 * x * 3, x1 = MIN (2 * x + 1, width - 1) * 3;
      const gint r = r0[x0] + r0[x1] + r1[x0] + r1[x1];
      const gint g = r0[x0 + 1] + r0[x1 + 1] + r1[x0 + 1] + r1[x1 + 1];
      const gint b = r0[x0 + 2] + r0[x1 + 2] + r1[x0 + 2] + r1[x1 + 2];

      du[x] = clamp_u8 (((c[1][0] * r + c[1][1] * g + c[1][2] * b +
                  (1 << 17)) >> 18) + off[1]);
      dv[x] = clamp_u8 (((c[2][0] * r + c[2][1] * g + c[2][2] * b +
                  (1 << 17)) >> 18) + off[2]);
    }
  }
}

static void
gst_vdiff_src_convert (GstVdiffSrc * self, const guint8 * rgb,
    GstVideoFrame * frame)
{
  const gint width = GST_VIDEO_FRAME_WIDTH (frame);
  const gint height = GST_VIDEO_FRAME_HEIGHT (frame);
  gint x, y;

  switch (GST_VIDEO_FRAME_FORMAT (frame)) {
    case GST_VIDEO_FORMAT_RGB:{
      guint8 *dst = GST_VIDEO_FRAME_PLANE_DATA (frame, 0);
      gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (frame, 0);

      for (y = 0; y < height; y++)
        memcpy (dst + (gsize) y * stride, rgb + (gsize) y * width * 3,
            (gsize) width * 3);
      break;
    }
    case GST_VIDEO_FORMAT_RGBx:{
      guint8 *dst = GST_VIDEO_FRAME_PLANE_DATA (frame, 0);
      gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (frame, 0);

      for (y = 0; y < height; y++) {
        const guint8 *s = rgb + (gsize) y * width * 3;
        guint8 *d = dst + (gsize) y * stride;

        for (x = 0; x < width; x++, s += 3, d += 4) {
          d[0] = s[0];
          d[1] = s[1];
          d[2] = s[2];
          d[3] = 0xff;
        }
      }
      break;
    }
    case GST_VIDEO_FORMAT_I420:
      gst_vdiff_src_rgb_to_i420 (self, rgb, frame);
      break;
    default:
      g_assert_not_reached ();
  }
}

static GstFlowReturn
gst_vdiff_src_fill (GstPushSrc * psrc, GstBuffer * buffer)
{
  GstVdiffSrc *self = GST_VDIFF_SRC (psrc);
  GstVideoFrame frame;
  GBytes *rgb;
  gboolean need_start;
  GstClockTime pts, next;
  gint fps_n, fps_d;

  if (G_UNLIKELY (GST_VIDEO_INFO_FORMAT (&self->vinfo) ==
          GST_VIDEO_FORMAT_UNKNOWN))
    goto not_negotiated;

  g_mutex_lock (&self->gen_lock);
  need_start = self->gen_thread == NULL;
  g_mutex_unlock (&self->gen_lock);
  if (need_start && !gst_vdiff_src_start_generation (self))
    return GST_FLOW_ERROR;

  g_mutex_lock (&self->gen_lock);
  while (g_queue_is_empty (&self->queue) && !self->gen_done
      && !self->flushing)
    g_cond_wait (&self->gen_cond, &self->gen_lock);
  if (self->flushing)
    goto flushing;
  rgb = g_queue_pop_head (&self->queue);
  if (rgb == NULL)
    goto finished;
  g_mutex_unlock (&self->gen_lock);

  if (!gst_video_frame_map (&frame, &self->vinfo, buffer, GST_MAP_WRITE))
    goto map_failed;
  gst_vdiff_src_convert (self, g_bytes_get_data (rgb, NULL), &frame);
  gst_video_frame_unmap (&frame);
  g_bytes_unref (rgb);

  fps_n = GST_VIDEO_INFO_FPS_N (&self->vinfo);
  fps_d = GST_VIDEO_INFO_FPS_D (&self->vinfo);
  pts = gst_util_uint64_scale (self->n_frames, (guint64) fps_d * GST_SECOND,
      fps_n);
  next = gst_util_uint64_scale (self->n_frames + 1,
      (guint64) fps_d * GST_SECOND, fps_n);
  GST_BUFFER_PTS (buffer) = pts;
  GST_BUFFER_DTS (buffer) = GST_CLOCK_TIME_NONE;
  GST_BUFFER_DURATION (buffer) = next - pts;
  GST_BUFFER_OFFSET (buffer) = self->n_frames;
  GST_BUFFER_OFFSET_END (buffer) = self->n_frames + 1;
  self->n_frames++;

  GST_LOG_OBJECT (self, "frame %" G_GUINT64_FORMAT " at %" GST_TIME_FORMAT,
      self->n_frames - 1, GST_TIME_ARGS (pts));
  return GST_FLOW_OK;

not_negotiated:
  {
    return GST_FLOW_NOT_NEGOTIATED;
  }
flushing:
  {
    g_mutex_unlock (&self->gen_lock);
    GST_DEBUG_OBJECT (self, "flushing");
    return GST_FLOW_FLUSHING;
  }
finished:
  {
    vd_status status = self->gen_status;
    gchar *message = g_strdup (self->gen_error);

    g_mutex_unlock (&self->gen_lock);

    if (status == VD_OK) {
      GST_DEBUG_OBJECT (self, "clip complete after %" G_GUINT64_FORMAT
          " frames", self->n_frames);
      g_free (message);
      return GST_FLOW_EOS;
    }
    gst_vdiff_src_post_engine_error (self, status, FALSE,
        "Generation failed", message);
    g_free (message);
    return GST_FLOW_ERROR;
  }
map_failed:
  {
    g_bytes_unref (rgb);
    GST_ELEMENT_ERROR (self, RESOURCE, WRITE, ("Could not map an output "
            "buffer."), (NULL));
    return GST_FLOW_ERROR;
  }
}
