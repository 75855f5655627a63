/* The vdiff subcommands; each takes the arguments after its name and
 * returns the process exit code (0 ok, 1 failure, 2 usage error). */
#ifndef VD_TOOLS_COMMANDS_H
#define VD_TOOLS_COMMANDS_H

int vd_cmd_inspect(int argc, char **argv);
int vd_cmd_mkmodel(int argc, char **argv);
int vd_cmd_convert(int argc, char **argv);
int vd_cmd_dit(int argc, char **argv);
int vd_cmd_vae_decode(int argc, char **argv);
int vd_cmd_vae_encode(int argc, char **argv);
int vd_cmd_schedule(int argc, char **argv);
int vd_cmd_sample(int argc, char **argv);
int vd_cmd_generate(int argc, char **argv);
int vd_cmd_tokenize(int argc, char **argv);
int vd_cmd_t5(int argc, char **argv);
int vd_cmd_encode_prompt(int argc, char **argv);
int vd_cmd_plan(int argc, char **argv);

int vd_cmd_bench_offload(int argc, char **argv);

#endif
