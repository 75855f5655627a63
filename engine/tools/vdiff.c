/* vdiff: the engine's command-line program. */
#include <stdio.h>
#include <string.h>

#include "tools/commands.h"
#include "vd_config.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"generate", vd_cmd_generate, "prompt to video file (MP4 through FFmpeg, or .y4m)"},
    {"inspect", vd_cmd_inspect, "show a model file's architecture, configuration and tensors"},
    {"mkmodel", vd_cmd_mkmodel, "write a random-weight model with the real tensor names and shapes"},
    {"convert", vd_cmd_convert, "re-store a model file in another dtype or format"},
    {"dit", vd_cmd_dit, "one DiT forward pass on given inputs (checks against other implementations)"},
    {"vae-decode", vd_cmd_vae_decode, "decode a latent with the VAE"},
    {"vae-encode", vd_cmd_vae_encode, "encode a video into a latent with the VAE"},
    {"schedule", vd_cmd_schedule, "print the sampler's timesteps and sigmas to a file"},
    {"sample", vd_cmd_sample, "the sampling loop from given noise and embeddings, then decode"},
    {"tokenize", vd_cmd_tokenize, "print the umT5 tokenizer's ids for a text"},
    {"t5", vd_cmd_t5, "the umT5 encoder on given token ids (checks against other implementations)"},
    {"encode-prompt", vd_cmd_encode_prompt, "a prompt through Wan's text path: ids and embedding statistics"},
    {"plan", vd_cmd_plan, "where a DiT's weights would live for an allocation, the VRAM and the step time"},
    {"bench-offload", vd_cmd_bench_offload, "time DiT steps as more blocks stream from each source (CSV)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: vdiff COMMAND [OPTIONS]\n\n"
               "Run and inspect Wan video-diffusion models (libvdiff %s).\n\ncommands:\n",
            VD_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'vdiff COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("vdiff %s (CUDA %s, BLAS %s)\n", VD_VERSION, VD_HAVE_CUDA ? "yes" : "no", VD_HAVE_BLAS ? "yes" : "no");
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "vdiff: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
