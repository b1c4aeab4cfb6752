// FUZZ_SOURCES: src/common/dns.c
/* fuzz_dns.c - libFuzzer target for the DNS query parser and answer builder (src/common/dns.c).
 *
 * One input is parsed as a query; beyond memory safety the target checks with abort():
 *   - the result is -1 (no full header, or a response) or an RCODE the parser may return, with
 *     the id and flags taken from the header;
 *   - a parsed question is what the packet holds: re-encoding q->qname gives the question's
 *     bytes exactly (so no compression, no byte the text cannot show), q->name is its lowercase
 *     form, at most 253 bytes, printable, without empty labels;
 *   - every answer the resolver could build (the parser's RCODE, or for an accepted query an A
 *     record, NODATA, NXDOMAIN, REFUSED) is read back by a checker written here, independently
 *     of the builder, is not taken for a query, never outgrows SBX_DNS_MAX_ANSWER, and a buffer
 *     one byte too small gives -1 with nothing written.
 * The input is also read as a name from an offset the first byte chooses (compressed names,
 * pointer loops and chains), and as a string for sbx_dns_name_valid().
 * Build and run with fuzz/Makefile; replay_main.c replays corpora without libFuzzer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static unsigned g16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* What any name text from the parser must look like. */
static void check_text(const char *s, int lower)
{
	size_t n = strnlen(s, SBX_DNS_MAX_NAME + 1), label = 0;

	CHECK(n <= 253);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		CHECK(c >= 0x21 && c <= 0x7e && c != '\\');
		if (lower)
			CHECK(!(c >= 'A' && c <= 'Z'));
		if (c == '.') {
			CHECK(label > 0);
			label = 0;
		} else {
			CHECK(++label <= 63);
		}
	}
	CHECK(n == 0 || label > 0);
}

/* The labels of a dotted name, written independently of dns.c. */
static size_t encode(const char *s, uint8_t *out)
{
	size_t w = 0;

	while (*s) {
		size_t l = strcspn(s, ".");

		out[w++] = (uint8_t)l;
		memcpy(out + w, s, l);
		w += l;
		s += l;
		if (*s == '.')
			s++;
	}
	out[w++] = 0;
	return w;
}

/* Reads back an answer to the query in pkt. */
static void check_answer(const uint8_t *a, size_t n, const uint8_t *pkt, const struct sbx_dns_query *q, int rcode,
			 const uint8_t *ip, uint32_t ttl)
{
	unsigned flags;
	size_t off = 12;
	struct sbx_dns_query back;

	CHECK(n >= 12 && n <= SBX_DNS_MAX_ANSWER);
	flags = g16(a + 2);
	CHECK(g16(a) == q->id && g16(a) == g16(pkt));
	CHECK((flags & 0x8000) && (flags & 0x0400) && (flags & 0x0080) && !(flags & 0x0200) && !(flags & 0x0040));
	CHECK((flags & 0x7910) == (g16(pkt + 2) & 0x7910)); /* opcode, RD, CD copied */
	CHECK((flags & 0xf) == ((unsigned)rcode & 0xf));
	CHECK(g16(a + 4) == (q->question_len ? 1u : 0u) && g16(a + 6) == (ip ? 1u : 0u) && g16(a + 8) == 0 &&
	      g16(a + 10) == (q->has_edns ? 1u : 0u));
	if (q->question_len) {
		CHECK(n - off >= q->question_len);
		CHECK(memcmp(a + off, pkt + 12, q->question_len) == 0);
		off += q->question_len;
	}
	if (ip) {
		CHECK(n - off >= 16);
		CHECK(g16(a + off) == 0xc00c && g16(a + off + 2) == 1 && g16(a + off + 4) == 1);
		CHECK(((uint32_t)g16(a + off + 6) << 16 | g16(a + off + 8)) == (ttl > 0x7fffffffu ? 0x7fffffffu : ttl));
		CHECK(g16(a + off + 10) == 4 && memcmp(a + off + 12, ip, 4) == 0);
		off += 16;
	}
	if (q->has_edns) {
		CHECK(n - off >= 11);
		CHECK(a[off] == 0 && g16(a + off + 1) == 41 && g16(a + off + 3) == 1232);
		CHECK(a[off + 5] == ((unsigned)rcode >> 4) && a[off + 6] == 0);
		CHECK(g16(a + off + 7) == (q->edns_do ? 0x8000u : 0u) && g16(a + off + 9) == 0);
		off += 11;
	}
	CHECK(off == n);
	CHECK(sbx_dns_parse_query(a, n, &back) == -1);
}

static void build_and_check(const uint8_t *pkt, const struct sbx_dns_query *q, int rcode, const uint8_t *ip,
			    uint32_t ttl)
{
	uint8_t out[SBX_DNS_MAX_ANSWER + 16];
	int n;

	memset(out, 0xa5, sizeof(out));
	n = sbx_dns_build_answer(q, rcode, ip, ttl, out, SBX_DNS_MAX_ANSWER);
	CHECK(n >= 12);
	for (size_t i = (size_t)n; i < sizeof(out); i++)
		CHECK(out[i] == 0xa5);
	check_answer(out, (size_t)n, pkt, q, rcode, ip, ttl);
	memset(out, 0xa5, sizeof(out));
	CHECK(sbx_dns_build_answer(q, rcode, ip, ttl, out, (size_t)n - 1) == -1);
	for (size_t i = 0; i < sizeof(out); i++)
		CHECK(out[i] == 0xa5);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t ip[4] = {100, 64, 0, 1};
	struct sbx_dns_query q;
	int rc = sbx_dns_parse_query(data, size, &q);
	uint32_t ttl = size ? (uint32_t)data[size - 1] << 24 | (uint32_t)size : 0;

	CHECK(rc == -1 || rc == 0 || rc == SBX_DNS_FORMERR || rc == SBX_DNS_NOTIMP || rc == SBX_DNS_BADVERS);
	if (rc == -1) {
		CHECK(size < 12 || (data[2] & 0x80));
	} else {
		CHECK(size >= 12 && q.id == g16(data) && q.flags == g16(data + 2));
		CHECK(!(data[2] & 0x80));
		if (rc == SBX_DNS_NOTIMP)
			CHECK((data[2] & 0x78) != 0 && q.question_len == 0);
		if (rc == 0 || rc == SBX_DNS_BADVERS)
			CHECK(q.question_len > 0 && g16(data + 4) == 1 && g16(data + 6) == 0 && g16(data + 8) == 0 &&
			      !(data[2] & 0x02) && (data[2] & 0x78) == 0);
		if (rc == SBX_DNS_BADVERS)
			CHECK(q.has_edns);
		if (q.has_edns)
			CHECK(g16(data + 10) == 1);
	}
	if (rc >= 0 && q.question_len) {
		uint8_t wire[SBX_DNS_MAX_NAME + 8];
		size_t w;

		check_text(q.name, 1);
		check_text(q.qname, 0);
		CHECK(strlen(q.name) == strlen(q.qname) && strcasecmp(q.name, q.qname) == 0);
		w = encode(q.qname, wire);
		CHECK(w <= SBX_DNS_MAX_NAME && w + 4 == q.question_len && 12 + q.question_len <= size);
		CHECK(memcmp(wire, data + 12, w) == 0);
		CHECK(q.qtype == g16(data + 12 + w) && q.qclass == g16(data + 12 + w + 2));
	} else if (rc >= 0) {
		CHECK(q.name[0] == '\0' && q.qname[0] == '\0');
	}

	if (rc > 0) {
		build_and_check(data, &q, rc, NULL, 0);
	} else if (rc == 0) {
		if ((q.qtype == SBX_DNS_A || q.qtype == SBX_DNS_ANY) && q.qclass == 1)
			build_and_check(data, &q, 0, ip, ttl);
		else
			CHECK(sbx_dns_build_answer(&q, 0, ip, ttl, (uint8_t[SBX_DNS_MAX_ANSWER]){0}, SBX_DNS_MAX_ANSWER) == -1);
		build_and_check(data, &q, 0, NULL, 0);
		build_and_check(data, &q, SBX_DNS_NXDOMAIN, NULL, 0);
		build_and_check(data, &q, SBX_DNS_REFUSED, NULL, 0);
		CHECK(sbx_dns_build_answer(&q, SBX_DNS_NXDOMAIN, ip, ttl, (uint8_t[SBX_DNS_MAX_ANSWER]){0},
					   SBX_DNS_MAX_ANSWER) == -1);
		if (sbx_dns_name_valid(q.name))
			CHECK(q.name[0] != '\0');
	}

	/* A name anywhere in the input, as a response's names would be read. */
	if (size > 0) {
		char out[SBX_DNS_MAX_NAME + 1];
		size_t start = data[0] % size, off = start;

		if (sbx_dns_read_name(data, size, &off, out) == 0) {
			check_text(out, 1);
			CHECK(off > start && off <= size);
		} else {
			CHECK(off == start && out[0] == '\0');
		}
	}

	/* The input as a string, for the host-name rule. */
	{
		char s[300];
		size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1, label = 0;

		memcpy(s, data, n);
		s[n] = '\0';
		if (sbx_dns_name_valid(s)) {
			size_t len = strlen(s);

			CHECK(len >= 1 && len <= 253 && s[0] != '.' && s[len - 1] != '.');
			for (size_t i = 0; i < len; i++) {
				char c = s[i];

				CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
				      c == '-' || c == '_' || c == '.');
				label = c == '.' ? 0 : label + 1;
				CHECK(label <= 63 && !(c == '.' && s[i + 1] == '.'));
			}
		}
	}
	return 0;
}
