#include "offload/allocation.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

const char *vd_alloc_device_str(vd_alloc_device d, char *buf, int size)
{
    if (d.is_cuda)
        snprintf(buf, (size_t)size, "cuda:%d", d.index);
    else
        snprintf(buf, (size_t)size, "cpu");
    return buf;
}

/* A copy of text[b, e) with surrounding spaces removed. */
static void span(const char *b, const char *e, char *out, size_t size)
{
    while (b < e && isspace((unsigned char)*b))
        b++;
    while (e > b && isspace((unsigned char)e[-1]))
        e--;
    size_t n = (size_t)(e - b);
    if (n >= size)
        n = size - 1;
    memcpy(out, b, n);
    out[n] = '\0';
}

static vd_status bad(const char *all, const char *part, const char *why)
{
    return vd_error(VD_ERR_INVALID_ARGUMENT, "allocation '%s': '%s' %s", all, part, why);
}

static vd_status parse_device(const char *all, const char *s, vd_alloc_device *d)
{
    if (strcmp(s, "cpu") == 0) {
        d->is_cuda = false;
        d->index = 0;
        return VD_OK;
    }
    if (strcmp(s, "cuda") == 0) {
        d->is_cuda = true;
        d->index = 0;
        return VD_OK;
    }
    if (strncmp(s, "cuda:", 5) == 0 && isdigit((unsigned char)s[5])) {
        char *end;
        errno = 0;
        long v = strtol(s + 5, &end, 10);
        if (!errno && *end == '\0' && v >= 0 && v < 256) {
            d->is_cuda = true;
            d->index = (int)v;
            return VD_OK;
        }
    }
    return bad(all, s, "is not a device (use cpu or cuda:N)");
}

/* "2.5gb", "512MB", "100k", "1000b", "4g" → bytes (decimal units, as the
 * DisTorch strings mean them). */
static bool parse_bytes(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0)
        return false;
    char unit[8];
    span(end, end + strlen(end), unit, sizeof unit);
    for (char *p = unit; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    double mult;
    if (strcmp(unit, "b") == 0 || unit[0] == '\0')
        mult = 1;
    else if (strcmp(unit, "k") == 0 || strcmp(unit, "kb") == 0)
        mult = 1e3;
    else if (strcmp(unit, "m") == 0 || strcmp(unit, "mb") == 0)
        mult = 1e6;
    else if (strcmp(unit, "g") == 0 || strcmp(unit, "gb") == 0)
        mult = 1e9;
    else if (strcmp(unit, "t") == 0 || strcmp(unit, "tb") == 0)
        mult = 1e12;
    else if (strcmp(unit, "kib") == 0)
        mult = 1024.0;
    else if (strcmp(unit, "mib") == 0)
        mult = 1024.0 * 1024;
    else if (strcmp(unit, "gib") == 0)
        mult = 1024.0 * 1024 * 1024;
    else
        return false;
    *out = v * mult;
    return true;
}

bool vd_parse_bytes(const char *text, double *bytes)
{
    if (!text || !bytes)
        return false;
    char t[64];
    span(text, text + strlen(text), t, sizeof t);
    return t[0] != '\0' && parse_bytes(t, bytes);
}

static bool parse_number(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (*end && isspace((unsigned char)*end))
        end++;
    if (errno || end == s || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* "virtual_vram_gb=4;donors=cuda:1,cpu" */
static vd_status parse_virtual(const char *all, vd_allocation *a)
{
    a->mode = VD_ALLOC_VIRTUAL_VRAM;
    bool have_vram = false;
    const char *p = all;
    while (*p) {
        const char *semi = strchr(p, ';');
        const char *e = semi ? semi : p + strlen(p);
        char item[256];
        span(p, e, item, sizeof item);
        p = semi ? semi + 1 : e;
        if (item[0] == '\0')
            continue;
        char *eq = strchr(item, '=');
        if (!eq)
            return bad(all, item, "is not key=value (virtual_vram_gb=N or donors=dev,dev)");
        *eq = '\0';
        char key[64], val[192];
        span(item, eq, key, sizeof key);
        span(eq + 1, eq + 1 + strlen(eq + 1), val, sizeof val);
        if (strcmp(key, "virtual_vram_gb") == 0) {
            double gb;
            if (!parse_number(val, &gb) || gb < 0 || gb > 1e6)
                return bad(all, val, "is not a size in GB for virtual_vram_gb");
            a->virtual_vram_bytes = gb * 1e9;
            have_vram = true;
        } else if (strcmp(key, "donors") == 0 || strcmp(key, "donor") == 0) {
            const char *q = val;
            while (*q) {
                const char *comma = strchr(q, ',');
                const char *ce = comma ? comma : q + strlen(q);
                char dev[64];
                span(q, ce, dev, sizeof dev);
                q = comma ? comma + 1 : ce;
                if (dev[0] == '\0')
                    continue;
                if (a->n_donors == VD_ALLOC_MAX_ENTRIES)
                    return bad(all, val, "lists too many donors");
                VD_TRY(parse_device(all, dev, &a->donors[a->n_donors++]));
            }
        } else if (strcmp(key, "compute") == 0) {
            VD_TRY(parse_device(all, val, &a->compute));
            a->has_compute = true;
        } else {
            return bad(all, key, "is not a known key (virtual_vram_gb, donors, compute)");
        }
    }
    if (!have_vram)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "allocation '%s': virtual_vram_gb=N is missing", all);
    if (a->n_donors == 0) {
        a->donors[0].is_cuda = false; /* DisTorch's default donor */
        a->n_donors = 1;
    }
    return VD_OK;
}

/* DisTorch's full form "<expert>#<compute>;<vvram>;<donor>". */
static vd_status parse_distorch_full(const char *all, const char *hash, vd_allocation *a)
{
    char tail[256];
    span(hash + 1, hash + 1 + strlen(hash + 1), tail, sizeof tail);
    char *f[3] = {tail, NULL, NULL};
    for (int i = 1; i < 3; i++) {
        char *semi = f[i - 1] ? strchr(f[i - 1], ';') : NULL;
        if (semi) {
            *semi = '\0';
            f[i] = semi + 1;
        }
    }
    char s[96];
    if (f[0] && *f[0]) {
        span(f[0], f[0] + strlen(f[0]), s, sizeof s);
        VD_TRY(parse_device(all, s, &a->compute));
        a->has_compute = true;
    }
    if (hash != all) {
        /* an expert string before '#' wins, as in DisTorch */
        char expert[256];
        span(all, hash, expert, sizeof expert);
        bool had_compute = a->has_compute;
        vd_alloc_device compute = a->compute;
        VD_TRY(vd_allocation_parse(expert, a));
        a->has_compute = had_compute;
        a->compute = compute;
        return VD_OK;
    }
    a->mode = VD_ALLOC_VIRTUAL_VRAM;
    double gb = 0;
    if (f[1]) {
        span(f[1], f[1] + strlen(f[1]), s, sizeof s);
        if (s[0] && (!parse_number(s, &gb) || gb < 0 || gb > 1e6))
            return bad(all, s, "is not a virtual VRAM size in GB");
    }
    a->virtual_vram_bytes = gb * 1e9;
    if (f[2]) {
        span(f[2], f[2] + strlen(f[2]), s, sizeof s);
        if (s[0]) {
            VD_TRY(parse_device(all, s, &a->donors[0]));
            a->n_donors = 1;
        }
    }
    if (a->n_donors == 0) {
        a->donors[0].is_cuda = false;
        a->n_donors = 1;
    }
    return VD_OK;
}

vd_status vd_allocation_parse(const char *text, vd_allocation *a)
{
    memset(a, 0, sizeof *a);
    if (!text)
        return VD_OK;
    char all[512];
    span(text, text + strlen(text), all, sizeof all);
    if (strlen(text) >= sizeof all)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "allocation string is longer than %zu characters", sizeof all - 1);
    if (all[0] == '\0')
        return VD_OK;
    const char *hash = strchr(all, '#');
    if (hash)
        return parse_distorch_full(all, hash, a);
    if (strstr(all, "virtual_vram_gb") || strstr(all, "donors="))
        return parse_virtual(all, a);
    if (strncmp(all, "auto", 4) == 0 && (all[4] == '\0' || all[4] == ',')) {
        a->mode = VD_ALLOC_AUTO;
        if (all[4] == ',') {
            char b[64];
            span(all + 5, all + strlen(all), b, sizeof b);
            if (!parse_bytes(b, &a->budget_bytes) || a->budget_bytes <= 0)
                return bad(all, b, "is not a VRAM budget (e.g. auto,12gb)");
        }
        return VD_OK;
    }

    const char *p = all;
    while (*p) {
        const char *semi = strchr(p, ';');
        const char *e = semi ? semi : p + strlen(p);
        char item[128];
        span(p, e, item, sizeof item);
        p = semi ? semi + 1 : e;
        if (item[0] == '\0')
            continue;
        char *comma = strchr(item, ',');
        if (!comma)
            return bad(all, item, "is not 'device,amount' (e.g. cuda:0,2.5gb or cpu,*)");
        *comma = '\0';
        char dev[64], amount[64];
        span(item, comma, dev, sizeof dev);
        span(comma + 1, comma + 1 + strlen(comma + 1), amount, sizeof amount);
        if (a->n_entries == VD_ALLOC_MAX_ENTRIES)
            return vd_error(VD_ERR_INVALID_ARGUMENT, "allocation '%s' has more than %d entries", all, VD_ALLOC_MAX_ENTRIES);
        vd_alloc_entry *en = &a->entries[a->n_entries];
        VD_TRY(parse_device(all, dev, &en->device));
        for (int i = 0; i < a->n_entries; i++)
            if (a->entries[i].device.is_cuda == en->device.is_cuda && a->entries[i].device.index == en->device.index)
                return bad(all, dev, "is listed twice");
        vd_alloc_mode m;
        size_t n = strlen(amount);
        if (strcmp(amount, "*") == 0) {
            en->rest = true;
            m = VD_ALLOC_RESIDENT; /* fits any mode */
        } else if (n > 0 && amount[n - 1] == '%') {
            amount[n - 1] = '\0';
            if (!parse_number(amount, &en->value) || en->value < 0 || en->value > 1e6) {
                amount[n - 1] = '%';
                return bad(all, amount, "is not a percentage");
            }
            m = VD_ALLOC_RATIO;
        } else if (strpbrk(amount, "gGmMkKbBtT")) {
            if (!parse_bytes(amount, &en->value))
                return bad(all, amount, "is not a size (use e.g. 2.5gb, 512mb, or * for the rest)");
            m = VD_ALLOC_BYTES;
        } else {
            if (!parse_number(amount, &en->value) || en->value < 0 || en->value > 1)
                return bad(all, amount, "is not a size, percentage or fraction of the device's memory (0 to 1)");
            m = VD_ALLOC_FRACTION;
        }
        if (m != VD_ALLOC_RESIDENT) {
            if (a->mode != VD_ALLOC_RESIDENT && a->mode != m)
                return bad(all, amount, "mixes units; use only sizes, only percentages or only fractions");
            a->mode = m;
        }
        if (en->rest)
            for (int i = 0; i < a->n_entries; i++)
                if (a->entries[i].rest)
                    return bad(all, amount, "appears twice; only one device can take the rest");
        a->n_entries++;
    }
    if (a->n_entries == 0)
        return vd_error(VD_ERR_INVALID_ARGUMENT, "allocation '%s' names no device", all);
    if (a->mode == VD_ALLOC_RESIDENT) /* only "*" entries */
        a->mode = VD_ALLOC_BYTES;
    if (a->mode == VD_ALLOC_RATIO) {
        double sum = 0;
        for (int i = 0; i < a->n_entries; i++)
            sum += a->entries[i].value;
        if (sum <= 0)
            return vd_error(VD_ERR_INVALID_ARGUMENT, "allocation '%s': the percentages add up to 0", all);
    }
    if (a->mode == VD_ALLOC_FRACTION) {
        for (int i = 0; i < a->n_entries; i++)
            if (!a->entries[i].rest && a->entries[i].value > 1)
                return bad(all, "fraction", "is above 1");
    }
    return VD_OK;
}
