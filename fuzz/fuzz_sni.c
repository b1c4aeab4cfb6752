// FUZZ_SOURCES: src/common/tls_sni.c src/common/dns.c
/* fuzz_sni.c - libFuzzer target for the ClientHello parser (src/common/tls_sni.c).
 *
 * One input is parsed as the start of a stream; beyond memory safety the target checks with
 * abort():
 *   - OK means hello_len <= len, hello_len <= SBX_TLS_MAX_INPUT, a host that is "" or a valid
 *     lowercase DNS host name, a printable ALPN text, a legacy_version 0x0301..0x0304; any other
 *     result leaves out zeroed; NOT_TLS means the first two bytes are not 0x16 0x03;
 *   - fragmentation never changes the answer: prefixes (all of them for small inputs, a few
 *     chosen ones otherwise, each in an exact-size heap copy) are NEED_MORE or the whole input's
 *     verdict, OK with the same result once they contain the hello;
 *   - the records do not matter, only the message: an accepted ClientHello re-split into records
 *     of another size (chosen by the last byte) gives the same host, ALPN and version.
 * Build and run with fuzz/Makefile; replay_main.c replays corpora without libFuzzer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "tls_sni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static int same(const struct sbx_sni *a, const struct sbx_sni *b)
{
	return strcmp(a->host, b->host) == 0 && strcmp(a->alpn, b->alpn) == 0 && a->version == b->version;
}

static void check_result(enum sbx_sni_result r, const struct sbx_sni *s, const uint8_t *data, size_t size)
{
	static const struct sbx_sni zero;

	CHECK(r == SBX_SNI_OK || r == SBX_SNI_NEED_MORE || r == SBX_SNI_NOT_TLS || r == SBX_SNI_BAD);
	if (r != SBX_SNI_OK) {
		CHECK(memcmp(s, &zero, sizeof(zero)) == 0);
		if (r == SBX_SNI_NOT_TLS)
			CHECK(size >= 1 && (data[0] != 0x16 || (size >= 2 && data[1] != 0x03)));
		return;
	}
	CHECK(s->hello_len >= 5 + 4 + 41 && s->hello_len <= size && s->hello_len <= SBX_TLS_MAX_INPUT);
	CHECK(data[0] == 0x16 && data[1] == 0x03 && data[2] >= 1 && data[2] <= 4);
	CHECK(s->version >= 0x0301 && s->version <= 0x0304);
	CHECK(memchr(s->host, '\0', sizeof(s->host)) && memchr(s->alpn, '\0', sizeof(s->alpn)));
	if (s->host[0]) {
		CHECK(sbx_dns_name_valid(s->host));
		for (const char *p = s->host; *p; p++)
			CHECK(!(*p >= 'A' && *p <= 'Z'));
	}
	for (const char *p = s->alpn; *p; p++)
		CHECK(*p > 0x20 && *p < 0x7f && !(*p == ',' && (p == s->alpn || p[1] == '\0' || p[1] == ',')));
}

/* The verdict on data[0..n), parsed from an exact-size copy, against the whole input's. */
static void check_prefix(const uint8_t *data, size_t n, enum sbx_sni_result whole, const struct sbx_sni *ws)
{
	uint8_t *c = malloc(n ? n : 1);
	struct sbx_sni s;
	enum sbx_sni_result r;

	CHECK(c);
	if (n)
		memcpy(c, data, n);
	r = sbx_sni_parse(c, n, &s);
	check_result(r, &s, c, n);
	if (whole == SBX_SNI_OK && n < ws->hello_len)
		CHECK(r == SBX_SNI_NEED_MORE);
	else if (whole == SBX_SNI_OK)
		CHECK(r == SBX_SNI_OK && s.hello_len == ws->hello_len && same(&s, ws));
	else
		CHECK(r == SBX_SNI_NEED_MORE || r == whole);
	free(c);
}

/* Re-splits an accepted hello's message into records of `chunk` bytes. */
static void check_reframe(const uint8_t *data, const struct sbx_sni *ws, size_t chunk)
{
	static uint8_t msg[SBX_TLS_MAX_INPUT], out[SBX_TLS_MAX_INPUT + 8];
	size_t m = 0, o = 0, pos = 0;
	struct sbx_sni s;

	while (pos < ws->hello_len) {
		size_t len = (size_t)data[pos + 3] << 8 | data[pos + 4];

		CHECK(data[pos] == 0x16 && pos + 5 + len <= ws->hello_len);
		memcpy(msg + m, data + pos + 5, len);
		m += len;
		pos += 5 + len;
	}
	CHECK(pos == ws->hello_len && m >= 4 && m == 4 + ((size_t)msg[2] << 8 | msg[3]));
	/* No more than SBX_TLS_MAX_RECORDS records. */
	if (chunk < (m + SBX_TLS_MAX_RECORDS - 1) / SBX_TLS_MAX_RECORDS)
		chunk = (m + SBX_TLS_MAX_RECORDS - 1) / SBX_TLS_MAX_RECORDS;
	for (size_t off = 0; off < m; off += chunk) {
		size_t k = m - off < chunk ? m - off : chunk;

		out[o++] = 0x16;
		out[o++] = 0x03;
		out[o++] = data[2];
		out[o++] = (uint8_t)(k >> 8);
		out[o++] = (uint8_t)k;
		memcpy(out + o, msg + off, k);
		o += k;
	}
	CHECK(sbx_sni_parse(out, o, &s) == SBX_SNI_OK);
	CHECK(s.hello_len == o && same(&s, ws));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sbx_sni ws;
	enum sbx_sni_result whole = sbx_sni_parse(data, size, &ws);
	size_t cuts[5];

	check_result(whole, &ws, data, size);
	if (size <= 300) {
		for (size_t n = 0; n < size; n++)
			check_prefix(data, n, whole, &ws);
	} else {
		cuts[0] = size - 1;
		cuts[1] = size / 2;
		cuts[2] = size * data[size - 1] / 256;
		cuts[3] = whole == SBX_SNI_OK ? ws.hello_len : size / 3;
		cuts[4] = whole == SBX_SNI_OK ? ws.hello_len - 1 : 5;
		for (size_t i = 0; i < 5; i++)
			check_prefix(data, cuts[i], whole, &ws);
	}
	if (whole == SBX_SNI_OK) {
		check_reframe(data, &ws, 16384);
		check_reframe(data, &ws, 1 + (size_t)data[size - 1] * 3);
	}
	return 0;
}
