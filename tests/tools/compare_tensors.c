/* compare_tensors OUT GOLDEN NAME BOUND [NAME BOUND ...]
 * Relative L2 error of tensor NAME in OUT against GOLDEN (the reference);
 * exits 1 if any exceeds its bound or the shapes differ.  A bound of 0
 * demands exact equality.  NAME may be "out_name:golden_name". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/weights.h"
#include "tools/tensor_file.h"

static double *as_f64(const vd_weight *w, int64_t n)
{
    double *d = malloc((size_t)(n > 0 ? n : 1) * sizeof *d);
    if (!d)
        return NULL;
    if (w->tensor.dtype == VD_F64 || w->tensor.dtype == VD_I64) {
        for (int64_t i = 0; i < n; i++) {
            if (w->tensor.dtype == VD_F64)
                memcpy(&d[i], (const char *)w->tensor.data + 8 * i, 8);
            else {
                int64_t v;
                memcpy(&v, (const char *)w->tensor.data + 8 * i, 8);
                d[i] = (double)v;
            }
        }
        return d;
    }
    float *f = malloc((size_t)(n > 0 ? n : 1) * sizeof *f);
    if (!f || vd_dtype_to_f32(w->tensor.dtype, w->tensor.data, f, n) != VD_OK) {
        free(f);
        free(d);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        d[i] = f[i];
    free(f);
    return d;
}

int main(int argc, char **argv)
{
    if (argc < 5 || (argc - 3) % 2) {
        fprintf(stderr, "usage: compare_tensors OUT GOLDEN NAME BOUND [NAME BOUND ...]\n");
        return 2;
    }
    vd_weights *a, *b;
    if (vd_weights_open(argv[1], &a) != VD_OK || vd_weights_open(argv[2], &b) != VD_OK) {
        fprintf(stderr, "compare_tensors: %s\n", vd_last_error());
        return 1;
    }
    int bad = 0;
    for (int k = 3; k < argc; k += 2) {
        char name[256];
        snprintf(name, sizeof name, "%s", argv[k]);
        char *colon = strchr(name, ':');
        const char *gold_name = name;
        if (colon) {
            *colon = '\0';
            gold_name = colon + 1;
        }
        double bound = atof(argv[k + 1]);
        const vd_weight *x = vd_weights_find(a, name), *y = vd_weights_find(b, gold_name);
        if (!x || !y || !vd_tensor_same_shape(&x->tensor, &y->tensor)) {
            fprintf(stderr, "%s: missing in one file or shapes differ\n", name);
            bad = 1;
            continue;
        }
        int64_t n = vd_tensor_nelem(&x->tensor);
        double *p = as_f64(x, n), *q = as_f64(y, n);
        if (!p || !q) {
            fprintf(stderr, "%s: cannot read\n", name);
            bad = 1;
        } else {
            double num = 0, den = 0, maxd = 0;
            for (int64_t i = 0; i < n; i++) {
                double d = p[i] - q[i];
                num += d * d;
                den += q[i] * q[i];
                if (fabs(d) > maxd)
                    maxd = fabs(d);
            }
            double rel = den > 0 ? sqrt(num / den) : sqrt(num);
            int ok = bound == 0 ? num == 0 : rel <= bound;
            printf("%-12s rel_l2 %.3e  max_abs %.3e  bound %.1e  %s\n", name, rel, maxd, bound, ok ? "ok" : "FAIL");
            bad |= !ok;
        }
        free(p);
        free(q);
    }
    vd_weights_close(a);
    vd_weights_close(b);
    return bad;
}
