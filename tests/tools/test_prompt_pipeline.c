/* Prompts through the whole pipeline on tiny random models (written here as
 * mkmodel does): the text encoder carried in the umT5 file tokenizes and
 * encodes the prompt and Wan's default negative prompt; with
 * release_text_encoder the encoder is freed after each request's prompts
 * and loaded again for the next, with the same frames as keeping it. */
#include <unistd.h>

#include "core/mapped_file.h"
#include "model_cache.h"
#include "test_util.h"
#include "tools/model_export.h"
#include "tools/random_weights.h"
#include "vdiff/pipeline.h"

static void write_model(const char *arch_id, const char *path, const vd_export_extra *extra)
{
    vd_arch_info arch;
    CHECK_OK(vd_arch_from_preset(arch_id, "tiny", &arch));
    vd_storage_policy policy;
    CHECK_OK(vd_storage_policy_parse("f32", VD_FORMAT_SAFETENSORS, &policy));
    vd_random_weights rnd = {7};
    vd_export_request req = {.path = path, .arch = &arch, .policy = &policy, .values = vd_random_weight_values,
                             .ctx = &rnd, .extras = extra, .n_extras = extra ? 1 : 0};
    CHECK_OK(vd_export_model(&req));
}

typedef struct frames {
    uint64_t hash;
    int n;
} frames;

static int on_frames(void *user, const uint8_t *rgb, int first, int n, int w, int h)
{
    frames *f = user;
    (void)first;
    for (size_t i = 0; i < (size_t)n * (size_t)w * (size_t)h * 3; i++)
        f->hash = f->hash * 1099511628211ull ^ rgb[i];
    f->n += n;
    return 0;
}

static frames generate(vd_pipeline *p, const char *prompt)
{
    frames f = {0, 0};
    vd_request_params rq = vd_request_params_default();
    rq.prompt = prompt;
    rq.width = 32, rq.height = 32, rq.frames = 5, rq.steps = 2;
    rq.on_frames = on_frames;
    rq.user = &f;
    CHECK_OK(vd_pipeline_generate(p, &rq, NULL));
    return f;
}

int main(void)
{
    char dit[128], vae[128], te[128];
    snprintf(dit, sizeof dit, "/tmp/vd_prompt_dit_%d.safetensors", (int)getpid());
    snprintf(vae, sizeof vae, "/tmp/vd_prompt_vae_%d.safetensors", (int)getpid());
    snprintf(te, sizeof te, "/tmp/vd_prompt_te_%d.safetensors", (int)getpid());
    vd_mapped_file tok;
    CHECK_OK(vd_mapped_file_open(VD_TEST_DATA_DIR "/tokenizer/vdiff-small.model", &tok));
    vd_export_extra spiece = {"spiece_model", VD_U8, 1, {(int64_t)tok.size}, tok.data};
    write_model("wan21-t2v", dit, NULL);
    write_model("wan-vae", vae, NULL);
    write_model("umt5", te, &spiece);
    vd_mapped_file_close(&tok);

    vd_pipeline_options po = vd_pipeline_options_default();
    po.dit = dit, po.vae = vae, po.text_encoder = te, po.threads = 2;
    vd_pipeline *keep = NULL, *release = NULL;
    CHECK_OK(vd_pipeline_open(&po, &keep));
    int with_te = vd_cache_count();
    frames a = generate(keep, "a red fox runs through snow");
    frames b = generate(keep, "a blue whale sings");
    CHECK(a.n == 5 && b.n == 5);
    CHECKF(a.hash != b.hash, "different prompts gave the same frames");
    vd_pipeline_close(keep);
    CHECK(vd_cache_count() == 0);

    po.release_text_encoder = 1;
    CHECK_OK(vd_pipeline_open(&po, &release));
    CHECKF(vd_cache_count() == with_te - 1, "the released text encoder is still loaded (%d entries, %d before)",
           vd_cache_count(), with_te);
    frames c = generate(release, "a red fox runs through snow");
    CHECK(vd_cache_count() == with_te - 1);
    CHECKF(c.hash == a.hash, "reloading the text encoder changed the frames");
    vd_pipeline_close(release);

    /* a text encoder whose width does not match the DiT's */
    po.release_text_encoder = 0;
    po.dit = VD_TEST_DATA_DIR "/golden/dit_tiny_t2v_f32.safetensors"; /* text_dim 32 */
    CHECK_FAILS(vd_pipeline_open(&po, &keep), VD_ERR_UNSUPPORTED);
    remove(dit), remove(vae), remove(te);
    return test_finish("prompt_pipeline");
}
