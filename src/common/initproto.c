#include "initproto.h"

#include <errno.h>
#include <string.h>

#include "fdpass.h"

#define ALIGN4(n) (((n) + 3u) & ~(size_t)3u)

int sbx_msg_begin(sbx_buf *b, uint16_t type, uint32_t id)
{
	struct sbx_msg_hdr h = {.magic = SBX_MSG_MAGIC, .type = type, .flags = 0, .id = id, .len = 0};

	sbx_buf_reset(b);
	b->max = SBX_MSG_MAX;
	return sbx_buf_append(b, &h, sizeof(h));
}

int sbx_msg_put(sbx_buf *b, uint16_t type, const void *data, uint32_t len)
{
	struct sbx_attr_hdr a = {.type = type, .reserved = 0, .len = len};
	static const char pad[4];
	size_t padded = ALIGN4(len);

	if (sizeof(a) + padded > sbx_buf_room(b)) {
		errno = E2BIG;
		return -1;
	}
	if (sbx_buf_append(b, &a, sizeof(a)) < 0 || sbx_buf_append(b, data, len) < 0 ||
	    sbx_buf_append(b, pad, padded - len) < 0)
		return -1;
	return 0;
}

int sbx_msg_put_str(sbx_buf *b, uint16_t type, const char *s)
{
	size_t n = strlen(s) + 1;

	if (n > UINT32_MAX) {
		errno = E2BIG;
		return -1;
	}
	return sbx_msg_put(b, type, s, (uint32_t)n);
}

int sbx_msg_put_u32(sbx_buf *b, uint16_t type, uint32_t v)
{
	return sbx_msg_put(b, type, &v, sizeof(v));
}

int sbx_msg_put_u64(sbx_buf *b, uint16_t type, uint64_t v)
{
	return sbx_msg_put(b, type, &v, sizeof(v));
}

int sbx_msg_nest_begin(sbx_buf *b, uint16_t type, size_t *off)
{
	struct sbx_attr_hdr a = {.type = type, .reserved = 0, .len = 0};

	*off = b->len;
	return sbx_buf_append(b, &a, sizeof(a));
}

int sbx_msg_nest_end(sbx_buf *b, size_t off)
{
	struct sbx_attr_hdr a;

	if (off + sizeof(a) > b->len)
		return -1;
	memcpy(&a, b->data + off, sizeof(a));
	a.len = (uint32_t)(b->len - off - sizeof(a));
	memcpy(b->data + off, &a, sizeof(a));
	/* Nested payloads are made of aligned attributes, so no padding is needed. */
	return 0;
}

int sbx_msg_finish(sbx_buf *b)
{
	struct sbx_msg_hdr h;

	if (b->len < sizeof(h))
		return -1;
	memcpy(&h, b->data, sizeof(h));
	h.len = (uint32_t)(b->len - sizeof(h));
	memcpy(b->data, &h, sizeof(h));
	return 0;
}

int sbx_msg_parse(const void *pkt, size_t n, struct sbx_msg_hdr *hdr, struct sbx_attr_iter *it)
{
	if (n < sizeof(*hdr) || n > SBX_MSG_MAX)
		return -1;
	memcpy(hdr, pkt, sizeof(*hdr));
	if (hdr->magic != SBX_MSG_MAGIC || hdr->len != n - sizeof(*hdr))
		return -1;
	it->p = (const uint8_t *)pkt + sizeof(*hdr);
	it->left = hdr->len;
	it->error = false;
	return 0;
}

bool sbx_attr_next(struct sbx_attr_iter *it, struct sbx_attr *a)
{
	struct sbx_attr_hdr h;
	size_t padded;

	if (it->left == 0)
		return false;
	if (it->left < sizeof(h)) {
		it->error = true;
		return false;
	}
	memcpy(&h, it->p, sizeof(h));
	if (h.len > it->left - sizeof(h)) {
		it->error = true;
		return false;
	}
	a->type = h.type;
	a->len = h.len;
	a->data = it->p + sizeof(h);
	padded = ALIGN4((size_t)h.len);
	if (padded > it->left - sizeof(h))
		padded = it->left - sizeof(h); /* tolerate a missing pad on the last attribute */
	it->p += sizeof(h) + padded;
	it->left -= sizeof(h) + padded;
	return true;
}

void sbx_attr_nested(const struct sbx_attr *a, struct sbx_attr_iter *it)
{
	it->p = a->data;
	it->left = a->len;
	it->error = false;
}

int sbx_attr_u32(const struct sbx_attr *a, uint32_t *v)
{
	if (a->len != sizeof(*v))
		return -1;
	memcpy(v, a->data, sizeof(*v));
	return 0;
}

int sbx_attr_u64(const struct sbx_attr *a, uint64_t *v)
{
	if (a->len != sizeof(*v))
		return -1;
	memcpy(v, a->data, sizeof(*v));
	return 0;
}

int sbx_attr_str(const struct sbx_attr *a, const char **s)
{
	if (a->len == 0 || a->data[a->len - 1] != '\0' || memchr(a->data, '\0', a->len) != a->data + a->len - 1)
		return -1;
	*s = (const char *)a->data;
	return 0;
}

int sbx_msg_send(int sock, const sbx_buf *b, const int *fds, size_t nfds)
{
	return sbx_send_fds(sock, b->data, b->len, fds, nfds);
}

long sbx_msg_recv(int sock, void *buf, int *fds, size_t max_fds, size_t *nfds)
{
	return (long)sbx_recv_fds(sock, buf, SBX_MSG_MAX, fds, max_fds, nfds);
}
