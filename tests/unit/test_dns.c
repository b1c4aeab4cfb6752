/* test_dns.c - the DNS query parser and answer builder (src/common/dns.c): queries captured from
 * glibc, a dig-style query built by hand after RFC 1035 / RFC 6891, every header and question
 * rule, compression pointers (backwards only, no loops, bounded jumps), name and label limits,
 * EDNS, and answers read back by a small checker written here, independently of the builder. */
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "tap.h"

/* Captured from glibc 2.36 (`getent ahostsv4 example.com`, then with RES_OPTIONS=edns0 and the
 * name typed as Example.COM, then the AAAA half of `getent ahosts www.example.org`), run in a
 * mount namespace whose /etc/resolv.conf pointed at a UDP socket on 127.0.0.1:53 that saved
 * what arrived. Also in fuzz/corpus/dns/. */
static const uint8_t glibc_a[] = {
	0xd8, 0x9c, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d,
	0x00, 0x00, 0x01, 0x00, 0x01,
};
static const uint8_t glibc_edns[] = {
	0x1e, 0x22, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x07, 0x45, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x43, 0x4f, 0x4d,
	0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x29, 0x04, 0xb0, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00,
};
static const uint8_t glibc_aaaa[] = {
	0x04, 0x65, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x03, 0x77, 0x77, 0x77, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65,
	0x03, 0x6f, 0x72, 0x67, 0x00, 0x00, 0x1c, 0x00, 0x01,
};
/* What `dig example.com` (BIND 9.18) sends: RD and AD set, EDNS with UDP size 1232 and a
 * client COOKIE option (RFC 7873). */
static const uint8_t dig_query[] = {
	0x5a, 0x3c, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x07, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0x03, 'c', 'o', 'm', 0x00,
	0x00, 0x01, 0x00, 0x01,
	0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c,
	0x00, 0x0a, 0x00, 0x08, 0x9e, 0x1f, 0x32, 0x6b, 0x07, 0xa1, 0x5c, 0x44,
};

/* ---- building packets ---- */

struct pkt {
	uint8_t b[1200];
	size_t n;
};

static void put8(struct pkt *p, unsigned v)
{
	if (p->n < sizeof(p->b))
		p->b[p->n++] = (uint8_t)v;
}

static void put16(struct pkt *p, unsigned v)
{
	put8(p, v >> 8);
	put8(p, v);
}

static void putn(struct pkt *p, const void *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put8(p, ((const uint8_t *)d)[i]);
}

static void header(struct pkt *p, unsigned id, unsigned flags, unsigned qd, unsigned an, unsigned ns, unsigned ar)
{
	p->n = 0;
	put16(p, id);
	put16(p, flags);
	put16(p, qd);
	put16(p, an);
	put16(p, ns);
	put16(p, ar);
}

/* A dotted name as labels (no escapes: each '.' ends a label), then the root. */
static void name(struct pkt *p, const char *s)
{
	while (*s) {
		size_t l = strcspn(s, ".");

		put8(p, (unsigned)l);
		putn(p, s, l);
		s += l;
		if (*s == '.')
			s++;
	}
	put8(p, 0);
}

static void opt(struct pkt *p, unsigned udp, unsigned version, unsigned flags, const void *rdata, size_t rdlen)
{
	put8(p, 0);
	put16(p, 41);
	put16(p, udp);
	put8(p, 0);
	put8(p, version);
	put16(p, flags);
	put16(p, (unsigned)rdlen);
	putn(p, rdata, rdlen);
}

/* A standard query for s (type A, class IN), RD set. */
static void simple_query(struct pkt *p, const char *s)
{
	header(p, 0x1234, 0x0100, 1, 0, 0, 0);
	name(p, s);
	put16(p, SBX_DNS_A);
	put16(p, 1);
}

/* ---- checks ---- */

/* Parses an exact-size heap copy, so ASan sees any read past the end. */
static int parse(const uint8_t *b, size_t n, struct sbx_dns_query *q)
{
	uint8_t *c = malloc(n ? n : 1);
	int rc;

	if (!c)
		abort();
	if (n)
		memcpy(c, b, n);
	rc = sbx_dns_parse_query(c, n, q);
	free(c);
	return rc;
}

static int parse_pkt(const struct pkt *p, struct sbx_dns_query *q)
{
	return parse(p->b, p->n, q);
}

static unsigned g16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

struct want {
	unsigned rcode; /* full (extended) RCODE */
	const uint8_t *ip;
	uint32_t ttl;
	int edns, edns_do;
};

/* Reads an answer back, independently of the builder: header, the question echoed byte for
 * byte from the query, the A record pointing at the question's name, the OPT record, nothing
 * else. Returns NULL or what is wrong. */
static const char *check_answer(const uint8_t *a, size_t n, const uint8_t *query, const struct sbx_dns_query *q,
				const struct want *w)
{
	unsigned flags;
	size_t off = 12;

	if (n < 12)
		return "shorter than a header";
	flags = g16(a + 2);
	if (g16(a) != g16(query))
		return "id not copied";
	if (!(flags & 0x8000) || !(flags & 0x0400) || !(flags & 0x0080) || (flags & 0x0200))
		return "QR, AA, RA not set or TC set";
	if ((flags & 0x7800) != (g16(query + 2) & 0x7800))
		return "opcode not copied";
	if ((flags & 0x0100) != (g16(query + 2) & 0x0100))
		return "RD not copied";
	if ((flags & 0x000f) != (w->rcode & 0xf))
		return "RCODE";
	if (g16(a + 4) != (q->question_len ? 1u : 0u) || g16(a + 6) != (w->ip ? 1u : 0u) || g16(a + 8) != 0 ||
	    g16(a + 10) != (w->edns ? 1u : 0u))
		return "section counts";
	if (q->question_len) {
		if (n - off < q->question_len || memcmp(a + off, query + 12, q->question_len) != 0)
			return "question not echoed as sent";
		off += q->question_len;
	}
	if (w->ip) {
		if (n - off < 16)
			return "A record truncated";
		if (g16(a + off) != 0xc00c || g16(a + off + 2) != 1 || g16(a + off + 4) != 1)
			return "A record name/type/class";
		if (((uint32_t)g16(a + off + 6) << 16 | g16(a + off + 8)) != w->ttl)
			return "A record TTL";
		if (g16(a + off + 10) != 4 || memcmp(a + off + 12, w->ip, 4) != 0)
			return "A record address";
		off += 16;
	}
	if (w->edns) {
		if (n - off < 11)
			return "OPT truncated";
		if (a[off] != 0 || g16(a + off + 1) != 41 || g16(a + off + 3) != 1232)
			return "OPT name/type/UDP size";
		if (a[off + 5] != (w->rcode >> 4) || a[off + 6] != 0)
			return "OPT extended RCODE/version";
		if (g16(a + off + 7) != (w->edns_do ? 0x8000u : 0u) || g16(a + off + 9) != 0)
			return "OPT flags/RDATA";
		off += 11;
	}
	return off == n ? NULL : "bytes after the records";
}

/* Builds the answer, checks it, and checks that every smaller buffer is refused. */
static void answer_ok(const char *what, const uint8_t *query, const struct sbx_dns_query *q, const struct want *w)
{
	uint8_t out[SBX_DNS_MAX_ANSWER], small[SBX_DNS_MAX_ANSWER];
	int n = sbx_dns_build_answer(q, (int)w->rcode, w->ip, w->ttl, out, sizeof(out));
	const char *why = n > 0 ? check_answer(out, (size_t)n, query, q, w) : "build failed";
	struct sbx_dns_query back;
	int refused = 1;

	if (!ok(!why, "%s: answer", what))
		diag("%s", why);
	ok(n > 0 && parse(out, (size_t)n, &back) == -1, "%s: the answer is not taken for a query", what);
	for (size_t cap = 0; n > 0 && cap < (size_t)n; cap++) {
		memset(small, 0xee, sizeof(small));
		if (sbx_dns_build_answer(q, (int)w->rcode, w->ip, w->ttl, small, cap) != -1 || small[cap] != 0xee)
			refused = 0;
	}
	ok(refused, "%s: every buffer smaller than the answer (%d bytes) gives -1, untouched", what, n);
}

/* ---- tests ---- */

static void test_captured(void)
{
	static const uint8_t ip[4] = {10, 0, 0, 7};
	struct sbx_dns_query q;

	is_int(parse(glibc_a, sizeof(glibc_a), &q), 0, "glibc A query");
	is_int(q.id, 0xd89c, "id");
	is_str(q.name, "example.com", "name");
	is_int(q.qtype, SBX_DNS_A, "type A");
	is_int(q.qclass, 1, "class IN");
	is_int(q.question_len, sizeof(glibc_a) - 12, "question_len");
	is_int(q.has_edns, 0, "no EDNS");
	answer_ok("glibc A", glibc_a, &q, &(struct want){0, ip, 300, 0, 0});

	is_int(parse(glibc_edns, sizeof(glibc_edns), &q), 0, "glibc A query with EDNS");
	is_str(q.name, "example.com", "name lowercased");
	is_str(q.qname, "Example.COM", "name as sent kept for the echo");
	is_int(q.has_edns, 1, "EDNS seen");
	answer_ok("glibc EDNS (question echoed with its case)", glibc_edns, &q, &(struct want){0, ip, 60, 1, 0});

	is_int(parse(glibc_aaaa, sizeof(glibc_aaaa), &q), 0, "glibc AAAA query");
	is_int(q.qtype, SBX_DNS_AAAA, "type AAAA");
	is_str(q.name, "www.example.org", "name");
	answer_ok("AAAA NODATA", glibc_aaaa, &q, &(struct want){0, NULL, 0, 0, 0});
	is_int(sbx_dns_build_answer(&q, 0, ip, 60, (uint8_t[512]){0}, 512), -1, "no A record for an AAAA question");
	answer_ok("NXDOMAIN", glibc_aaaa, &q, &(struct want){SBX_DNS_NXDOMAIN, NULL, 0, 0, 0});

	is_int(parse(dig_query, sizeof(dig_query), &q), 0, "dig query (AD, EDNS, cookie)");
	is_int(q.flags, 0x0120, "flags as received");
	is_int(q.has_edns, 1, "EDNS seen");
	answer_ok("dig", dig_query, &q, &(struct want){0, ip, 1, 1, 0});

	/* Every proper prefix of a query is broken (never 0), and each is read within bounds. */
	{
		int good = 1;

		for (size_t n = 0; n < sizeof(dig_query); n++) {
			int rc = parse(dig_query, n, &q);

			if (rc != (n < 12 ? -1 : SBX_DNS_FORMERR))
				good = 0;
		}
		ok(good, "every prefix of the dig query: -1 without a full header, FORMERR after");
	}
}

static void test_header(void)
{
	struct pkt p;
	struct sbx_dns_query q;

	is_int(parse(glibc_a, 11, &q), -1, "11-byte header: -1");
	is_int(parse(glibc_a, 0, &q), -1, "empty packet: -1");
	is_int(parse(glibc_a, 12, &q), SBX_DNS_FORMERR, "header only: FORMERR");
	is_int(q.id, 0xd89c, "... with the id set");
	is_int(q.question_len, 0, "... and no question");
	answer_ok("FORMERR without a question", glibc_a, &q, &(struct want){SBX_DNS_FORMERR, NULL, 0, 0, 0});

	simple_query(&p, "example.com");
	p.b[2] |= 0x80;
	is_int(parse_pkt(&p, &q), -1, "response (QR=1): -1, never answered");
	simple_query(&p, "example.com");
	p.b[2] |= 0x02;
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "TC set: FORMERR");
	simple_query(&p, "example.com");
	p.b[2] |= 4 << 3; /* NOTIFY */
	is_int(parse_pkt(&p, &q), SBX_DNS_NOTIMP, "opcode NOTIFY: NOTIMP");
	answer_ok("NOTIMP (opcode copied)", p.b, &q, &(struct want){SBX_DNS_NOTIMP, NULL, 0, 0, 0});
	simple_query(&p, "example.com");
	p.b[2] |= 1 << 3; /* IQUERY */
	is_int(parse_pkt(&p, &q), SBX_DNS_NOTIMP, "opcode IQUERY: NOTIMP");

	header(&p, 1, 0x0100, 0, 0, 0, 0);
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "QDCOUNT 0: FORMERR");
	header(&p, 1, 0x0100, 2, 0, 0, 0);
	name(&p, "a.example");
	put16(&p, 1);
	put16(&p, 1);
	name(&p, "b.example");
	put16(&p, 1);
	put16(&p, 1);
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "QDCOUNT 2: FORMERR");
	simple_query(&p, "example.com");
	p.b[7] = 1;
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "ANCOUNT 1: FORMERR");
	simple_query(&p, "example.com");
	p.b[9] = 1;
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "NSCOUNT 1: FORMERR");
	simple_query(&p, "example.com");
	p.b[11] = 2;
	opt(&p, 1232, 0, 0, NULL, 0);
	opt(&p, 1232, 0, 0, NULL, 0);
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "ARCOUNT 2 (two OPT): FORMERR");
	simple_query(&p, "example.com");
	put8(&p, 0);
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "a byte after the question: FORMERR");
	simple_query(&p, "example.com");
	p.n -= 1;
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "class cut short: FORMERR");
}

static void test_names(void)
{
	struct pkt p;
	struct sbx_dns_query q;
	char buf[300];

	simple_query(&p, "WWW.Example.COM");
	is_int(parse_pkt(&p, &q), 0, "uppercase name");
	is_str(q.name, "www.example.com", "lowercased");
	is_str(q.qname, "WWW.Example.COM", "case kept in qname");

	header(&p, 7, 0x0100, 1, 0, 0, 0);
	put8(&p, 0);
	put16(&p, SBX_DNS_NS);
	put16(&p, 1);
	is_int(parse_pkt(&p, &q), 0, "root name (. NS)");
	is_str(q.name, "", "root is \"\"");
	is_int(q.question_len, 5, "question_len 5");
	answer_ok("root NODATA", p.b, &q, &(struct want){0, NULL, 0, 0, 0});

	simple_query(&p, "_sip._tcp.example.com");
	is_int(parse_pkt(&p, &q), 0, "SRV-style underscores");
	simple_query(&p, "*.example.com");
	is_int(parse_pkt(&p, &q), 0, "'*' label parses (printable) ...");
	ok(!sbx_dns_name_valid(q.name), "... but is not a valid host name");

	/* Label bytes that would make the dotted text ambiguous or unsafe. */
	{
		static const struct {
			const char *label;
			size_t len;
			const char *why;
		} bad[] = {
			{"a.b", 3, "'.' inside a label"}, {"a\0b", 3, "NUL inside a label"},
			{"a b", 3, "space"},              {"a\\b", 3, "backslash"},
			{"a\nb", 3, "newline"},           {"\xc3\xa4", 2, "non-ASCII"},
			{"\x7f", 1, "DEL"},
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			header(&p, 1, 0x0100, 1, 0, 0, 0);
			put8(&p, (unsigned)bad[i].len);
			putn(&p, bad[i].label, bad[i].len);
			name(&p, "example");
			put16(&p, 1);
			put16(&p, 1);
			is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "%s: FORMERR", bad[i].why);
			ok(q.name[0] == '\0' && q.question_len == 0, "%s: no name kept", bad[i].why);
		}
	}

	/* Label and name lengths. */
	memset(buf, 'a', 63);
	memcpy(buf + 63, ".example", 9);
	simple_query(&p, buf);
	is_int(parse_pkt(&p, &q), 0, "63-byte label");
	header(&p, 1, 0x0100, 1, 0, 0, 0);
	put8(&p, 0x40);
	for (int i = 0; i < 64; i++)
		put8(&p, 'a');
	put8(&p, 0);
	put16(&p, 1);
	put16(&p, 1);
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "64-byte label (length byte 0x40, a reserved type): FORMERR");
	header(&p, 1, 0x0100, 1, 0, 0, 0);
	put8(&p, 0x81);
	put8(&p, 'a');
	put8(&p, 0);
	put16(&p, 1);
	put16(&p, 1);
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "label type 10: FORMERR");
	/* 253 text bytes = 255 on the wire: four labels of 63, 63, 63, 61. */
	for (size_t i = 0; i < 253; i++)
		buf[i] = (i % 64 == 63) ? '.' : 'b';
	buf[253] = '\0';
	simple_query(&p, buf);
	is_int(p.n, 12 + 255 + 4, "255-byte wire name built");
	is_int(parse_pkt(&p, &q), 0, "255-byte name (253 as text)");
	is_int(strlen(q.name), 253, "253 text bytes");
	ok(sbx_dns_name_valid(q.name), "and a valid host name");
	buf[253] = 'b';
	buf[254] = '\0';
	simple_query(&p, buf);
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "256-byte name: FORMERR");
	/* Many one-byte labels: 127 fill 254 bytes + root = 255; 128 do not. */
	header(&p, 1, 0x0100, 1, 0, 0, 0);
	for (int i = 0; i < 127; i++)
		putn(&p, "\x01x", 2);
	put8(&p, 0);
	put16(&p, 1);
	put16(&p, 1);
	is_int(parse_pkt(&p, &q), 0, "127 one-byte labels (255 bytes)");
	header(&p, 1, 0x0100, 1, 0, 0, 0);
	for (int i = 0; i < 128; i++)
		putn(&p, "\x01x", 2);
	put8(&p, 0);
	put16(&p, 1);
	put16(&p, 1);
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "128 one-byte labels (257 bytes): FORMERR");
}

static void test_compression(void)
{
	struct pkt p;
	struct sbx_dns_query q;
	char out[SBX_DNS_MAX_NAME + 1];
	size_t off;

	/* In a query the question is the first name: nothing before it to point at. */
	header(&p, 1, 0x0100, 1, 0, 0, 0);
	put16(&p, 0xc00c);
	put16(&p, 1);
	put16(&p, 1);
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "pointer to itself: FORMERR");
	header(&p, 1, 0x0100, 1, 0, 0, 0);
	putn(&p, "\x03www", 4);
	put16(&p, 0xc00c);
	put16(&p, 1);
	put16(&p, 1);
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "loop back to the name's start: FORMERR");
	header(&p, 1, 0x0100, 1, 0, 0, 0);
	putn(&p, "\x03www", 4);
	put16(&p, 0xc000 | 18);
	name(&p, "example");
	put16(&p, 1);
	put16(&p, 1);
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "forward pointer: FORMERR");
	header(&p, 1, 0x0100, 1, 0, 0, 0);
	putn(&p, "\x03www", 4);
	put16(&p, 0xc002);
	put16(&p, 1);
	put16(&p, 1);
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "pointer into the header: FORMERR");
	header(&p, 1, 0x0100, 1, 0, 0, 0);
	putn(&p, "\x03www", 4);
	put16(&p, 0xc004); /* QDCOUNT's high byte, 0: would read as the root */
	put16(&p, 1);
	put16(&p, 1);
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "pointer to a zero byte of the header: FORMERR");

	/* The reader, on a message where earlier names exist (as in a response). */
	header(&p, 1, 0x8180, 1, 1, 0, 0);
	name(&p, "example.com"); /* at 12, 13 bytes */
	put16(&p, 1);
	put16(&p, 1);
	/* 29: "www" + pointer to 12 */
	putn(&p, "\x03www", 4);
	put16(&p, 0xc00c);
	/* 35: "a" + pointer to 29 (a pointer to a name that ends in a pointer) */
	putn(&p, "\x01" "a", 2);
	put16(&p, 0xc000 | 29);
	off = 29;
	ok(sbx_dns_read_name(p.b, p.n, &off, out) == 0 && strcmp(out, "www.example.com") == 0 && off == 35,
	   "backward pointer: www.example.com, offset after the pointer");
	off = 35;
	ok(sbx_dns_read_name(p.b, p.n, &off, out) == 0 && strcmp(out, "a.www.example.com") == 0 && off == 39,
	   "pointer to a name ending in a pointer");
	off = 12;
	ok(sbx_dns_read_name(p.b, p.n, &off, out) == 0 && off == 25, "uncompressed name: offset after the root");
	/* 39: a loop through two names: 39 "b" -> 43, 43 "c" -> 39 (both backwards from where
	 * each pointer sits, but 39 is not before the stretch that started at 39). */
	putn(&p, "\x01" "b", 2);
	put16(&p, 0xc000 | 43);
	putn(&p, "\x01" "c", 2);
	put16(&p, 0xc000 | 39);
	off = 43;
	ok(sbx_dns_read_name(p.b, p.n, &off, out) == -1 && off == 43 && out[0] == '\0',
	   "loop between two names: -1, offset unchanged");
	off = 39;
	is_int(sbx_dns_read_name(p.b, p.n, &off, out), -1, "forward pointer: -1");
	/* 47: pointer to 47 */
	put16(&p, 0xc000 | 47);
	off = 47;
	is_int(sbx_dns_read_name(p.b, p.n, &off, out), -1, "pointer to itself: -1");
	/* 49: a good pointer (to 12) of which the packet only has the first byte. */
	put16(&p, 0xc00c);
	off = 49;
	is_int(sbx_dns_read_name(p.b, 50, &off, out), -1, "pointer cut in half: -1");
	off = 49;
	ok(sbx_dns_read_name(p.b, 51, &off, out) == 0 && strcmp(out, "example.com") == 0, "... and whole: followed");
	off = p.n;
	is_int(sbx_dns_read_name(p.b, p.n, &off, out), -1, "at the end of the packet: -1");

	/* A chain of pointers to pointers: SBX_DNS_MAX_JUMPS are followed, one more is not. */
	{
		size_t start = p.n, last;

		name(&p, "chain.example"); /* at start */
		last = start;
		for (int i = 0; i < SBX_DNS_MAX_JUMPS + 1; i++) {
			size_t here = p.n;

			put16(&p, 0xc000 | (unsigned)last);
			last = here;
		}
		/* The pointer at `last` has SBX_DNS_MAX_JUMPS + 1 jumps to go; the one before it,
		 * SBX_DNS_MAX_JUMPS. */
		off = last - 2;
		ok(sbx_dns_read_name(p.b, p.n, &off, out) == 0 && strcmp(out, "chain.example") == 0,
		   "%d jumps followed", SBX_DNS_MAX_JUMPS);
		off = last;
		is_int(sbx_dns_read_name(p.b, p.n, &off, out), -1, "%d jumps: -1", SBX_DNS_MAX_JUMPS + 1);
	}

	/* Compression does not get around the 255-byte limit. */
	{
		char big[300];
		size_t at;

		for (size_t i = 0; i < 249; i++)
			big[i] = (i % 64 == 63) ? '.' : 'd';
		big[249] = '\0';
		header(&p, 1, 0x8180, 1, 1, 0, 0);
		name(&p, big); /* 251 bytes on the wire */
		at = p.n;
		putn(&p, "\x02xy", 3);
		put16(&p, 0xc00c); /* 3 + 251 = 254: fits */
		putn(&p, "\x03xyz", 4);
		put16(&p, 0xc00c); /* 4 + 251 = 255: fits */
		putn(&p, "\x04wxyz", 5);
		put16(&p, 0xc00c); /* 256: does not */
		off = at;
		is_int(sbx_dns_read_name(p.b, p.n, &off, out), 0, "compressed name of 254 bytes");
		off = at + 5;
		ok(sbx_dns_read_name(p.b, p.n, &off, out) == 0 && strlen(out) == 253, "compressed name of 255 bytes");
		off = at + 11;
		is_int(sbx_dns_read_name(p.b, p.n, &off, out), -1, "compressed name of 256 bytes: -1");
	}
}

static void test_edns(void)
{
	static const uint8_t ip[4] = {192, 0, 2, 1};
	static const uint8_t cookie[] = {0x00, 0x0a, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8};
	static const uint8_t bad_opt_len[] = {0x00, 0x0a, 0x00, 0x09, 1, 2, 3, 4, 5, 6, 7, 8};
	struct pkt p;
	struct sbx_dns_query q;

	simple_query(&p, "example.com");
	p.b[11] = 1;
	opt(&p, 4096, 0, 0x8000, cookie, sizeof(cookie));
	is_int(parse_pkt(&p, &q), 0, "EDNS with DO and a cookie");
	ok(q.has_edns && q.edns_do, "has_edns and DO");
	answer_ok("EDNS answer copies DO", p.b, &q, &(struct want){0, ip, 5, 1, 1});

	simple_query(&p, "example.com");
	p.b[11] = 1;
	opt(&p, 512, 1, 0, NULL, 0);
	is_int(parse_pkt(&p, &q), SBX_DNS_BADVERS, "EDNS version 1: BADVERS");
	ok(q.has_edns && q.question_len > 0, "with EDNS and the question kept");
	answer_ok("BADVERS (extended RCODE in OPT)", p.b, &q, &(struct want){SBX_DNS_BADVERS, NULL, 0, 1, 0});
	simple_query(&p, "example.com");
	is_int(parse_pkt(&p, &q), 0, "no EDNS");
	is_int(sbx_dns_build_answer(&q, SBX_DNS_BADVERS, NULL, 0, (uint8_t[512]){0}, 512), -1,
	       "BADVERS without EDNS: -1");

	simple_query(&p, "example.com");
	p.b[11] = 1;
	opt(&p, 1232, 0, 0, bad_opt_len, sizeof(bad_opt_len));
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "option longer than the OPT RDATA: FORMERR");
	is_int(q.has_edns, 0, "... and no EDNS in the answer");
	simple_query(&p, "example.com");
	p.b[11] = 1;
	opt(&p, 1232, 0, 0, cookie, 3);
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "3 bytes of RDATA (half an option header): FORMERR");
	simple_query(&p, "example.com");
	p.b[11] = 1;
	opt(&p, 1232, 0, 0, cookie, sizeof(cookie));
	p.b[p.n - sizeof(cookie) - 1] += 1; /* RDLENGTH one past the packet */
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "RDLENGTH past the end: FORMERR");
	simple_query(&p, "example.com");
	p.b[11] = 1;
	opt(&p, 1232, 0, 0, NULL, 0);
	put8(&p, 0);
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "a byte after the OPT record: FORMERR");
	simple_query(&p, "example.com");
	p.b[11] = 1;
	name(&p, "example.com");
	put16(&p, 41);
	put16(&p, 1232);
	put16(&p, 0);
	put16(&p, 0);
	put16(&p, 0);
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "OPT with a non-root name: FORMERR");
	simple_query(&p, "example.com");
	p.b[11] = 1;
	put8(&p, 0);
	put16(&p, 1);
	put16(&p, 1);
	put16(&p, 0);
	put16(&p, 60);
	put16(&p, 4);
	putn(&p, ip, 4);
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "additional record that is not OPT: FORMERR");
	simple_query(&p, "example.com");
	p.b[11] = 1;
	is_int(parse_pkt(&p, &q), SBX_DNS_FORMERR, "ARCOUNT 1 and no record: FORMERR");
}

static void test_builder(void)
{
	static const uint8_t ip[4] = {100, 64, 1, 2};
	uint8_t out[SBX_DNS_MAX_ANSWER];
	struct pkt p;
	struct sbx_dns_query q;
	char buf[300];
	int n;

	simple_query(&p, "example.com");
	is_int(parse_pkt(&p, &q), 0, "query");
	is_int(sbx_dns_build_answer(&q, SBX_DNS_NXDOMAIN, ip, 60, out, sizeof(out)), -1, "address with NXDOMAIN: -1");
	is_int(sbx_dns_build_answer(&q, 17, NULL, 0, out, sizeof(out)), -1, "RCODE 17: -1");
	is_int(sbx_dns_build_answer(&q, -1, NULL, 0, out, sizeof(out)), -1, "RCODE -1: -1");
	is_int(sbx_dns_build_answer(NULL, 0, NULL, 0, out, sizeof(out)), -1, "no query: -1");
	answer_ok("TTL above 2^31-1 clamped", p.b, &q, &(struct want){0, ip, 0x7fffffff, 0, 0});
	n = sbx_dns_build_answer(&q, 0, ip, 0xffffffffu, out, sizeof(out));
	ok(n > 4 && out[n - 10] == 0x7f && out[n - 9] == 0xff, "TTL 0xffffffff written as 0x7fffffff");
	header(&p, 0x4242, 0x0000, 1, 0, 0, 0);
	name(&p, "version.bind");
	put16(&p, SBX_DNS_TXT);
	put16(&p, 3);
	is_int(parse_pkt(&p, &q), 0, "class CH query parses (the caller refuses it)");
	is_int(q.qclass, 3, "class 3");
	answer_ok("REFUSED for class CH", p.b, &q, &(struct want){SBX_DNS_REFUSED, NULL, 0, 0, 0});
	q.qtype = SBX_DNS_A;
	is_int(sbx_dns_build_answer(&q, 0, ip, 60, out, sizeof(out)), -1, "address for class CH: -1");

	header(&p, 0xbeef, 0x0110, 1, 0, 0, 0); /* RD and CD */
	name(&p, "any.example");
	put16(&p, SBX_DNS_ANY);
	put16(&p, 1);
	is_int(parse_pkt(&p, &q), 0, "ANY query");
	answer_ok("ANY answered with one A", p.b, &q, &(struct want){0, ip, 30, 0, 0});
	n = sbx_dns_build_answer(&q, 0, ip, 30, out, sizeof(out));
	ok(n > 4 && (out[3] & 0x10), "CD copied");
	header(&p, 0xbeef, 0x0000, 1, 0, 0, 0); /* RD clear */
	name(&p, "any.example");
	put16(&p, SBX_DNS_A);
	put16(&p, 1);
	is_int(parse_pkt(&p, &q), 0, "query without RD");
	answer_ok("RD stays clear", p.b, &q, &(struct want){0, ip, 30, 0, 0});

	/* The largest answer: a 255-byte name, an A record, EDNS. */
	for (size_t i = 0; i < 253; i++)
		buf[i] = (i % 64 == 63) ? '.' : 'e';
	buf[253] = '\0';
	simple_query(&p, buf);
	p.b[11] = 1;
	opt(&p, 1232, 0, 0, NULL, 0);
	is_int(parse_pkt(&p, &q), 0, "query with the longest name and EDNS");
	answer_ok("largest answer", p.b, &q, &(struct want){0, ip, 30, 1, 0});
	is_int(sbx_dns_build_answer(&q, 0, ip, 30, out, sizeof(out)), 12 + 259 + 16 + 11, "298 bytes");

	/* A q filled in by hand (no qname) is answered with its lowercase name; a name the parser
	 * could not have produced is refused. */
	memset(&q, 0, sizeof(q));
	q.id = 9;
	q.flags = 0x0100;
	snprintf(q.name, sizeof(q.name), "hand.example");
	q.qtype = SBX_DNS_A;
	q.qclass = 1;
	q.question_len = 18;
	n = sbx_dns_build_answer(&q, 0, ip, 30, out, sizeof(out));
	ok(n == 12 + 18 + 16 && memcmp(out + 12, "\x04hand\x07" "example\x00\x00\x01\x00\x01", 18) == 0,
	   "hand-made query answered with its name");
	snprintf(q.name, sizeof(q.name), "a..example");
	is_int(sbx_dns_build_answer(&q, 0, ip, 30, out, sizeof(out)), -1, "empty label in q->name: -1");
	snprintf(q.name, sizeof(q.name), "a.example.");
	is_int(sbx_dns_build_answer(&q, 0, ip, 30, out, sizeof(out)), -1, "trailing dot in q->name: -1");
	q.question_len = 0;
	is_int(sbx_dns_build_answer(&q, 0, NULL, 0, out, sizeof(out)), -1, "NOERROR without a question: -1");
}

static void test_name_valid(void)
{
	static const char *const good[] = {"example.com", "a", "xn--bcher-kva.example", "_dmarc.example.com",
					    "a-b.c_d.example", "123.example", "EXAMPLE.COM", "10.0.0.example",
					    "0x7f.example", "localhost"};
	static const char *const bad[] = {"", ".", "example.com.", ".example.com", "a..b", "a b.example",
					  "a*.example", "exa\xc3\xa4mple", "10.0.0.1", "127.1", "2130706433",
					  "host.0x7f", "host.0X1F", "host.0x", "host.017", "[::1]", "::1", "a:b",
					  "a/b", "a@b"};
	char buf[300];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ok(sbx_dns_name_valid(good[i]), "valid: %s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(!sbx_dns_name_valid(bad[i]), "invalid: '%s'", bad[i]);
	ok(!sbx_dns_name_valid(NULL), "invalid: NULL");
	memset(buf, 'a', 63);
	memcpy(buf + 63, ".x", 3);
	ok(sbx_dns_name_valid(buf), "63-byte label");
	memset(buf, 'a', 64);
	memcpy(buf + 64, ".x", 3);
	ok(!sbx_dns_name_valid(buf), "64-byte label");
	for (size_t i = 0; i < 253; i++)
		buf[i] = (i % 64 == 63) ? '.' : 'c';
	buf[253] = '\0';
	ok(sbx_dns_name_valid(buf), "253 bytes");
	buf[253] = 'c';
	buf[254] = '\0';
	ok(!sbx_dns_name_valid(buf), "254 bytes");
}

int main(void)
{
	test_captured();
	test_header();
	test_names();
	test_compression();
	test_edns();
	test_builder();
	test_name_valid();
	return done_testing();
}
