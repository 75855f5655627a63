/* Read-only memory mapping of a whole file. */
#ifndef VD_CORE_MAPPED_FILE_H
#define VD_CORE_MAPPED_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "vdiff/status.h"

typedef struct vd_mapped_file {
    const uint8_t *data; /* NULL for an empty file */
    size_t size;
    char *path;
} vd_mapped_file;

/* Map `path` read-only.  A missing file is VD_ERR_NOT_FOUND, a directory or
 * unreadable file VD_ERR_IO, each with a message naming the path. */
vd_status vd_mapped_file_open(const char *path, vd_mapped_file *out);
void vd_mapped_file_close(vd_mapped_file *mf);

#endif
