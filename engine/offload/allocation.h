/* Parsing the weight-placement strings ComfyUI-MultiGPU (DisTorch2) users
 * already write (docs/distorch.md §1.2), plus an automatic mode:
 *
 *   bytes     "cuda:0,2.5gb;cpu,*"           fill devices in order; * takes the rest
 *   ratios    "cuda:0,8%;cuda:1,8%;cpu,4%"   split in proportion (here 40/40/20)
 *   fractions "cuda:0,0.5;cpu,*"             a fraction of each device's memory
 *   virtual   "virtual_vram_gb=4;donors=cuda:1,cpu"  (also DisTorch's "#cuda:0;4;cpu")
 *             keep (model − 4 GB) on the compute device, the rest on the donors
 *   auto      "auto" or "auto,12gb"          decide from measured compute and link
 *             speeds within a VRAM budget
 *
 * Devices are "cpu" and "cuda:N".  Parsing checks syntax only; whether the
 * devices exist and have room is the planner's job. */
#ifndef VD_OFFLOAD_ALLOCATION_H
#define VD_OFFLOAD_ALLOCATION_H

#include <stdbool.h>

#include "vdiff/status.h"

#define VD_ALLOC_MAX_ENTRIES 16

typedef enum vd_alloc_mode {
    VD_ALLOC_RESIDENT = 0, /* empty string: everything on the compute device */
    VD_ALLOC_BYTES,
    VD_ALLOC_RATIO,
    VD_ALLOC_FRACTION,
    VD_ALLOC_VIRTUAL_VRAM,
    VD_ALLOC_AUTO
} vd_alloc_mode;

typedef struct vd_alloc_device {
    bool is_cuda;
    int index;           /* CUDA ordinal */
} vd_alloc_device;

typedef struct vd_alloc_entry {
    vd_alloc_device device;
    double value;        /* bytes, percent, or fraction by mode */
    bool rest;           /* "*": whatever is left */
} vd_alloc_entry;

typedef struct vd_allocation {
    vd_alloc_mode mode;
    vd_alloc_entry entries[VD_ALLOC_MAX_ENTRIES];
    int n_entries;
    double virtual_vram_bytes;           /* virtual mode */
    vd_alloc_device donors[VD_ALLOC_MAX_ENTRIES];
    int n_donors;
    bool has_compute;                    /* "#cuda:0;..." names the compute device */
    vd_alloc_device compute;
    double budget_bytes;                 /* auto mode: VRAM budget, 0 = free memory */
} vd_allocation;

/* Parse; NULL or "" is the resident mode.  Errors quote the bad part. */
vd_status vd_allocation_parse(const char *text, vd_allocation *out);

/* A size such as "2.5gb", "512mb", "12GiB" or "1000" (bytes; decimal units
 * k/m/g/t as the DisTorch strings mean them, binary kib/mib/gib).  False if
 * the text is not a non-negative size. */
bool vd_parse_bytes(const char *text, double *bytes);

/* "cpu" / "cuda:1" into buf. */
const char *vd_alloc_device_str(vd_alloc_device d, char *buf, int size);

#endif
