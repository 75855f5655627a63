/* Streaming writer for safetensors and GGUF files.
 *
 * Declare every tensor first, then begin, then write each tensor's bytes
 * in declaration order (in one or several calls), then finish.  The file
 * is written to "PATH.part" and renamed only when finish succeeds, so a
 * failed or aborted write never leaves a file that looks complete; a
 * failure (disk full, short write, a tensor given the wrong byte count)
 * names the path, and finish then removes the part file.
 *
 * Layout.  GGUF: version 3, general.alignment 32 unless set, tensors in
 * declaration order, each at a multiple of the alignment (zero padding,
 * also after the last), dims written innermost first, 0-D tensors as [1].
 * safetensors: the header is padded with spaces so the data section
 * starts at a multiple of 8, and every tensor starts at a multiple of its
 * element size with no gaps between tensors (the reference reader rejects
 * gaps): declaration order when that already holds, otherwise larger
 * element types first, in declaration order within a size, as the
 * reference writer does.  The header lists tensors in file order. */
#ifndef VD_IO_MODEL_WRITER_H
#define VD_IO_MODEL_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "io/weights.h"

typedef struct vd_model_writer vd_model_writer;

/* `format` VD_FORMAT_NONE chooses by extension (.gguf → GGUF, otherwise
 * safetensors). */
vd_status vd_model_writer_open(const char *path, vd_file_format format, vd_model_writer **out);

/* Metadata (before begin).  Safetensors keeps string values in
 * "__metadata__" (numbers are written as decimal strings); GGUF keeps types. */
vd_status vd_model_writer_meta_string(vd_model_writer *w, const char *key, const char *value);
vd_status vd_model_writer_meta_u32(vd_model_writer *w, const char *key, uint32_t value);
vd_status vd_model_writer_meta_f32(vd_model_writer *w, const char *key, float value);
/* GGUF only (safetensors: VD_ERR_UNSUPPORTED). */
vd_status vd_model_writer_meta_string_array(vd_model_writer *w, const char *key, const char *const *values,
                                            size_t count);
vd_status vd_model_writer_meta_f32_array(vd_model_writer *w, const char *key, const float *values, size_t count);
vd_status vd_model_writer_meta_i32_array(vd_model_writer *w, const char *key, const int32_t *values,
                                         size_t count);

/* Declare a tensor (shape outermost first, as everywhere in the engine). */
vd_status vd_model_writer_declare(vd_model_writer *w, const char *name, vd_dtype dtype, int ndim,
                                  const int64_t *shape);

/* Write the header; after this only data may follow. */
vd_status vd_model_writer_begin(vd_model_writer *w);

/* Append bytes of the current tensor (tensors in declaration order). */
vd_status vd_model_writer_write(vd_model_writer *w, const void *data, size_t size);

/* Check that every tensor was written in full, flush, rename into place,
 * and free the writer (also on failure). */
vd_status vd_model_writer_finish(vd_model_writer *w);

/* Drop a writer and its partial file. */
void vd_model_writer_abort(vd_model_writer *w);

#endif
