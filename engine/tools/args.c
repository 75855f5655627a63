#include "tools/args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdiff/status.h"

void vd_args_init(vd_args *a, const char *cmd, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->argc = argc;
    a->argv = argv;
}

const char *vd_args_next(vd_args *a, bool *is_option)
{
    static _Thread_local char name[64];
    if (a->i >= a->argc)
        return NULL;
    const char *s = a->argv[a->i++];
    a->inline_value = NULL;
    *is_option = false;
    if (s[0] == '-' && s[1] != '\0' && strcmp(s, "-") != 0) {
        *is_option = true;
        const char *eq = strchr(s, '=');
        if (eq && s[1] == '-') {
            size_t n = (size_t)(eq - s);
            if (n >= sizeof name)
                n = sizeof name - 1;
            memcpy(name, s, n);
            name[n] = '\0';
            a->inline_value = eq + 1;
            a->opt = name;
            return name;
        }
        a->opt = s;
    }
    return s;
}

bool vd_args_is(const vd_args *a, const char *name) { return a->opt && strcmp(a->opt, name) == 0; }

int vd_args_error(vd_args *a, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", a->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see '%s --help')\n", a->cmd);
    a->failed = true;
    return 2;
}

const char *vd_args_value(vd_args *a)
{
    if (a->inline_value)
        return a->inline_value;
    if (a->i >= a->argc) {
        vd_args_error(a, "%s needs a value", a->opt);
        return NULL;
    }
    return a->argv[a->i++];
}

bool vd_args_int(vd_args *a, int64_t min, int64_t max, int64_t *out)
{
    const char *v = vd_args_value(a);
    if (!v)
        return false;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end != '\0') {
        vd_args_error(a, "%s: '%s' is not an integer", a->opt, v);
        return false;
    }
    if (x < min || x > max) {
        vd_args_error(a, "%s: %lld is outside %lld..%lld", a->opt, x, (long long)min, (long long)max);
        return false;
    }
    *out = x;
    return true;
}

bool vd_args_uint64(vd_args *a, uint64_t *out)
{
    const char *v = vd_args_value(a);
    if (!v)
        return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end != '\0' || v[0] == '-') {
        vd_args_error(a, "%s: '%s' is not a non-negative integer", a->opt, v);
        return false;
    }
    *out = x;
    return true;
}

bool vd_args_double(vd_args *a, double min, double max, double *out)
{
    const char *v = vd_args_value(a);
    if (!v)
        return false;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end != '\0' || !isfinite(x)) {
        vd_args_error(a, "%s: '%s' is not a number", a->opt, v);
        return false;
    }
    if (x < min || x > max) {
        vd_args_error(a, "%s: %g is outside %g..%g", a->opt, x, min, max);
        return false;
    }
    *out = x;
    return true;
}

int vd_tool_fail(const char *cmd, const char *what)
{
    fprintf(stderr, "%s: %s%s%s\n", cmd, what ? what : "", what ? ": " : "", vd_last_error());
    return 1;
}
