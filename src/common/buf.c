#include "buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sbx_buf_init(sbx_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->max = max;
}

void sbx_buf_free(sbx_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
}

void sbx_buf_reset(sbx_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

size_t sbx_buf_room(const sbx_buf *b)
{
	return b->max > b->len ? b->max - b->len : 0;
}

char *sbx_buf_reserve(sbx_buf *b, size_t len)
{
	size_t need, alloc;
	char *p;

	if (len > sbx_buf_room(b)) {
		errno = E2BIG;
		return NULL;
	}
	need = b->len + len + 1;
	if (need <= b->alloc)
		return b->data + b->len;
	alloc = b->alloc ? b->alloc : 256;
	while (alloc < need)
		alloc = alloc * 2 > alloc ? alloc * 2 : need;
	if (alloc > b->max + 1)
		alloc = b->max + 1;
	if (alloc < need)
		alloc = need;
	p = realloc(b->data, alloc);
	if (!p)
		return NULL;
	b->data = p;
	b->alloc = alloc;
	return b->data + b->len;
}

void sbx_buf_commit(sbx_buf *b, size_t len)
{
	b->len += len;
	b->data[b->len] = '\0';
}

int sbx_buf_append(sbx_buf *b, const void *data, size_t len)
{
	char *p = sbx_buf_reserve(b, len);

	if (!p)
		return -1;
	if (len)
		memcpy(p, data, len);
	sbx_buf_commit(b, len);
	return 0;
}

int sbx_buf_append_str(sbx_buf *b, const char *s)
{
	return sbx_buf_append(b, s, strlen(s));
}

int sbx_buf_vprintf(sbx_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;
	char *p;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -1;
	p = sbx_buf_reserve(b, (size_t)n);
	if (!p)
		return -1;
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	sbx_buf_commit(b, (size_t)n);
	return 0;
}

int sbx_buf_printf(sbx_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = sbx_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

void sbx_buf_consume(sbx_buf *b, size_t n)
{
	if (n >= b->len) {
		sbx_buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

char *sbx_buf_steal(sbx_buf *b)
{
	char *p = b->data;

	if (!p)
		p = calloc(1, 1);
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	return p;
}
