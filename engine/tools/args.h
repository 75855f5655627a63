/* Command-line parsing shared by the vdiff commands: long options as
 * "--name value" or "--name=value", strict number parsing, and uniform
 * error messages ("vdiff mkmodel: --dim: 'x' is not an integer"). */
#ifndef VD_TOOLS_ARGS_H
#define VD_TOOLS_ARGS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct vd_args {
    int argc;
    char **argv;
    int i;              /* next argument to read */
    const char *cmd;    /* "vdiff mkmodel", for messages */
    const char *opt;    /* the option being parsed */
    const char *inline_value; /* the part after '=' */
    bool failed;
} vd_args;

void vd_args_init(vd_args *a, const char *cmd, int argc, char **argv);

/* Next argument; sets *is_option for "--x" forms (the name is returned
 * without its value).  Returns NULL at the end. */
const char *vd_args_next(vd_args *a, bool *is_option);

/* True if the current option is `name` ("--dim"). */
bool vd_args_is(const vd_args *a, const char *name);

/* The current option's value (errors if missing). */
const char *vd_args_value(vd_args *a);
bool vd_args_int(vd_args *a, int64_t min, int64_t max, int64_t *out);
bool vd_args_uint64(vd_args *a, uint64_t *out);
bool vd_args_double(vd_args *a, double min, double max, double *out);

/* Report an error for this command; always returns 2 (the exit code). */
int vd_args_error(vd_args *a, const char *fmt, ...);

/* Print the engine's last error for this command; returns 1. */
int vd_tool_fail(const char *cmd, const char *what);

#endif
