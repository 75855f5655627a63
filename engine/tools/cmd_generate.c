/* vdiff generate: prompt to video file, with a progress bar. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "tools/args.h"
#include "tools/pipeline_args.h"
#include "tools/commands.h"
#include "tools/video_writer.h"
#include "vdiff/pipeline.h"

static const char *const generate_help =
    "usage: vdiff generate --model M --vae V --text-encoder T --prompt TEXT -o out.mp4 [options]\n\n"
    "Generate a clip from a prompt and write it as H.264 MP4 (MPEG-4 when no H.264\n"
    "encoder is present; .mkv and .mov work too), or as .y4m without FFmpeg.\n\n"
    "  --model FILE           Wan DiT (e.g. wan2.1_t2v_1.3B_fp16.safetensors, or a GGUF)\n"
    "  --vae FILE             Wan VAE (wan_2.1_vae.safetensors)\n"
    "  --text-encoder FILE    umT5-XXL (umt5_xxl_fp8_e4m3fn_scaled.safetensors)\n"
    "  --tokenizer FILE       SentencePiece .model (default: the one inside the text encoder)\n"
    "  --prompt TEXT          what to generate\n"
    "  --negative-prompt TEXT what to avoid (default: Wan's negative prompt)\n"
    "  --width N --height N   multiples of 16 (default: the model's, 832x480 for Wan2.1)\n"
    "  --frames N             4k+1 (default 81)\n"
    "  --fps N                frame rate of the file (default: the model's, 16)\n"
    "  --steps N --shift S --guidance G --sampler unipc|euler --seed N\n"
    "  --device cpu|cuda:N    where to compute (default cpu)\n"
    "  --text-encoder-device DEV  where the text encoder runs (default: --device)\n"
    "  --vae-device DEV       where the VAE decodes (default: --device)\n"
    "  --allocation STRING    weight placement, e.g. \"cuda:0,8gb;cpu,*\"\n"
    "  --threads N            CPU threads (default: all cores)\n"
    "  --release-text-encoder free the text encoder once the prompts are encoded\n"
    "  --release-dit-for-decode  free the DiT before the VAE decodes (reloaded per clip)\n"
    "  -o, --output FILE      the video file\n"
    "  --quiet                no progress bar\n"
    "  --verbose              also report the GPU memory vdiff's allocator used\n"
    "\nEnvironment (CUDA devices):\n"
    "  VD_FP8_GEMM=1          fp8 (e4m3) checkpoints run fp8 GEMMs on sm_89+ (about 1.6x faster\n"
    "                         linear layers; activations rounded to e4m3 per row); default off\n"
    "  VD_CUDA_ATTENTION=fa2  our own attention kernel instead of cuDNN's fused one\n"
    "  VD_CUDA_CONV=im2col    our im2col convolutions instead of cuDNN's\n";

/* One line per GPU the pipeline used: the most memory its tensors held at
 * once (since the device was opened), what they hold now and what the
 * allocator keeps cached. */
static void report_memory(const vd_pipeline *p)
{
    static const vd_stage stages[] = {VD_STAGE_SAMPLE, VD_STAGE_ENCODE_TEXT, VD_STAGE_DECODE};
    char seen[3][32] = {{0}};
    for (int i = 0; i < 3; i++) {
        vd_device_memory m;
        if (vd_pipeline_device_memory(p, stages[i], &m) != VD_OK)
            continue; /* the CPU, or no text encoder */
        bool dup = false;
        for (int j = 0; j < i; j++)
            dup = dup || strcmp(seen[j], m.device) == 0;
        snprintf(seen[i], sizeof seen[i], "%s", m.device);
        if (dup)
            continue;
        const double gib = 1024.0 * 1024.0 * 1024.0;
        fprintf(stderr, "%s: peak %.3f GiB in use, now %.3f GiB (+%.3f GiB cached); device %.2f GiB free of %.2f\n",
                m.device, (double)m.peak_bytes / gib, (double)m.in_use_bytes / gib, (double)m.cached_bytes / gib,
                (double)m.free_bytes / gib, (double)m.total_bytes / gib);
    }
}

typedef struct gen_state {
    vd_video_writer *writer;
    vd_status write_status;
    int quiet, tty, verbose;
    int frames_total, frames_written;
} gen_state;

static void bar(const gen_state *g, const char *label, int done, int total, double elapsed, double eta)
{
    if (g->quiet)
        return;
    const int width = 30;
    int fill = total > 0 ? done * width / total : 0;
    char b[64];
    for (int i = 0; i < width; i++)
        b[i] = i < fill ? '#' : '.';
    b[width] = '\0';
    fprintf(stderr, "%s%-8s [%s] %d/%d  %.1fs", g->tty ? "\r" : "", label, b, done, total, elapsed);
    if (eta >= 0)
        fprintf(stderr, "  eta %.1fs", eta);
    fprintf(stderr, g->tty ? "   " : "\n");
    if (g->tty && done >= total)
        fprintf(stderr, "\n");
}

static void on_progress(void *user, const vd_progress *p)
{
    gen_state *g = user;
    if (p->stage == VD_STAGE_DONE)
        return;
    if (p->stage == VD_STAGE_DECODE && p->step == 0)
        return; /* the decode bar starts with its first chunk */
    bar(g, vd_stage_name(p->stage), p->step, p->total, p->elapsed, p->eta);
}

static int on_frames(void *user, const uint8_t *rgb, int first, int n, int width, int height)
{
    gen_state *g = user;
    (void)first;
    for (int i = 0; i < n; i++) {
        g->write_status = vd_video_writer_frame(g->writer, rgb + (size_t)i * 3 * width * height);
        if (g->write_status != VD_OK)
            return 1;
        g->frames_written++;
    }
    return 0;
}

int vd_cmd_generate(int argc, char **argv)
{
    vd_args a;
    vd_args_init(&a, "vdiff generate", argc, argv);
    vd_pipeline_options po = vd_pipeline_options_default();
    vd_request_params rq = vd_request_params_default();
    const char *out = NULL, *s;
    int64_t fps = 0;
    gen_state g = {0};
    bool opt;
    while ((s = vd_args_next(&a, &opt))) {
        bool ok = true;
        if (!opt)
            return vd_args_error(&a, "unexpected argument '%s' (the prompt goes after --prompt)", s);
        if (vd_args_is(&a, "--help") || vd_args_is(&a, "-h")) {
            fputs(generate_help, stdout);
            return 0;
        } else if (vd_args_is(&a, "--fps"))
            ok = vd_args_int(&a, 1, 240, &fps);
        else if (vd_args_is(&a, "-o") || vd_args_is(&a, "--output"))
            ok = (out = vd_args_value(&a)) != NULL;
        else if (vd_args_is(&a, "--quiet"))
            g.quiet = 1;
        else if (vd_args_is(&a, "--verbose"))
            g.verbose = 1;
        else if (!vd_args_pipeline_option(&a, &po, &ok) && !vd_args_request_option(&a, &rq, &ok))
            return vd_args_error(&a, "unknown option %s", s);
        if (!ok)
            return 2;
    }
    if (!po.dit || !po.vae || !out)
        return vd_args_error(&a, "--model, --vae and -o are required");
    if (!rq.prompt)
        return vd_args_error(&a, "--prompt is required");
    g.tty = isatty(STDERR_FILENO);

    if (!g.quiet)
        fprintf(stderr, "loading %s, %s%s%s on %s\n", po.dit, po.vae, po.text_encoder ? ", " : "",
                po.text_encoder ? po.text_encoder : "", po.device);
    if (!g.quiet && (po.text_encoder_device || po.vae_device))
        fprintf(stderr, "text encoder on %s, VAE on %s\n", po.text_encoder_device ? po.text_encoder_device : po.device,
                po.vae_device ? po.vae_device : po.device);
    vd_pipeline *p = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (vd_pipeline_open(&po, &p) != VD_OK)
        return vd_tool_fail(a.cmd, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    vd_pipeline_info info;
    vd_pipeline_get_info(p, &info);
    int W = rq.width ? rq.width : info.width, H = rq.height ? rq.height : info.height;
    g.frames_total = rq.frames ? rq.frames : info.frames;
    if (!g.quiet)
        fprintf(stderr, "loaded %s (%.2f G parameters) in %.1fs; generating %dx%d, %d frames\n", info.dit_name,
                (double)info.dit_params / 1e9,
                (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec), W, H, g.frames_total);
    int64_t shape[4];
    vd_status st = vd_pipeline_latent_shape(p, &rq, shape); /* validate before creating a file */
    if (st == VD_OK)
        st = vd_video_writer_open(out, W, H, fps ? (int)fps : info.fps, &g.writer);
    if (st == VD_OK) {
        rq.on_progress = on_progress;
        rq.on_frames = on_frames;
        rq.user = &g;
        st = vd_pipeline_generate(p, &rq, NULL);
        if (st != VD_OK && g.write_status != VD_OK)
            st = g.write_status;
    }
    vd_status cs = vd_video_writer_close(g.writer, st == VD_OK);
    if (st == VD_OK)
        st = cs;
    if (st == VD_OK && g.verbose)
        report_memory(p);
    vd_pipeline_close(p);
    if (st != VD_OK)
        return vd_tool_fail(a.cmd, NULL);
    if (!g.quiet)
        fprintf(stderr, "wrote %s: %d frames of %dx%d\n", out, g.frames_written, W, H);
    printf("%s\n", out);
    return 0;
}
