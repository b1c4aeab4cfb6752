/* buf.h - a growable byte buffer with a hard cap.
 *
 * Every buffer that bytes from outside can grow is one of these, created with the largest size
 * it may ever reach. Appending past the cap fails (returns -1 with errno = E2BIG) and leaves the
 * buffer unchanged, so a caller can refuse the input cleanly. The contents are always followed by
 * a NUL byte (not counted in len) so text can be used as a C string. */
#ifndef SBX_BUF_H
#define SBX_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct sbx_buf {
	char *data;
	size_t len;
	size_t alloc;
	size_t max; /* hard cap on len */
} sbx_buf;

void sbx_buf_init(sbx_buf *b, size_t max);
void sbx_buf_free(sbx_buf *b);
void sbx_buf_reset(sbx_buf *b); /* len = 0, memory kept */
int sbx_buf_append(sbx_buf *b, const void *data, size_t len);
int sbx_buf_append_str(sbx_buf *b, const char *s);
int sbx_buf_printf(sbx_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sbx_buf_vprintf(sbx_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Make room for `len` more bytes; returns a pointer to write to, then call sbx_buf_commit. */
char *sbx_buf_reserve(sbx_buf *b, size_t len);
void sbx_buf_commit(sbx_buf *b, size_t len);
/* Drop the first n bytes. */
void sbx_buf_consume(sbx_buf *b, size_t n);
/* Hand the data out (caller frees); the buffer is left empty. */
char *sbx_buf_steal(sbx_buf *b);
size_t sbx_buf_room(const sbx_buf *b); /* how many more bytes the cap allows */

#endif
