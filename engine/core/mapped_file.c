#define _POSIX_C_SOURCE 200809L
#include "core/mapped_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

vd_status vd_mapped_file_open(const char *path, vd_mapped_file *out)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return vd_error(e == ENOENT ? VD_ERR_NOT_FOUND : VD_ERR_IO, "cannot open '%s': %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        close(fd);
        return vd_error(VD_ERR_IO, "'%s' is not a regular file%s%s", path, e ? ": " : "", e ? strerror(e) : "");
    }
    out->path = strdup(path);
    if (!out->path) {
        close(fd);
        return vd_error(VD_ERR_OUT_OF_MEMORY, "out of memory");
    }
    out->size = (size_t)st.st_size;
    if (out->size > 0) {
        void *p = mmap(NULL, out->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            free(out->path);
            out->path = NULL;
            return vd_error(e == ENOMEM ? VD_ERR_OUT_OF_MEMORY : VD_ERR_IO, "cannot map '%s': %s", path, strerror(e));
        }
        out->data = p;
    }
    close(fd);
    return VD_OK;
}

void vd_mapped_file_close(vd_mapped_file *mf)
{
    if (mf->data)
        munmap((void *)mf->data, mf->size);
    free(mf->path);
    memset(mf, 0, sizeof *mf);
}
