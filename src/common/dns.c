/* dns.c - parsing DNS queries from a sandbox and building the resolver's answers (RFC 1035,
 * RFC 6891 for EDNS).
 *
 * A query is bytes a hostile sandbox controls, so the parser:
 *   - checks every length against the packet before reading (no read without off + n <= len);
 *   - follows compression pointers only to offsets after the header and strictly before the
 *     part of the name being read, at most SBX_DNS_MAX_JUMPS times, with no recursion: every
 *     jump goes to a lower offset, so no loop can exist (the jump cap also bounds a long chain
 *     of pointers to pointers). In a query the question is the first name in the packet, so a
 *     pointer there has nothing before it to point at and is always FORMERR;
 *   - refuses, rather than escapes, label bytes that would make the dotted text ambiguous or
 *     unsafe to log: '.', '\\', NUL, controls, space and non-ASCII are FORMERR. Other printable
 *     bytes ('*', '/', '@') parse; sbx_dns_name_valid() is the host-name rule callers apply;
 *   - is strict about the rest: exactly one question, no answer or authority records, at most
 *     one additional record which must be a well-formed OPT, nothing after it.
 *
 * The answer re-encodes the question from the parsed name (case preserved, so a client that
 * randomises the case of its query names, "DNS 0x20", sees its own question back) rather than
 * copying the query's bytes: only what was validated goes back out. */
#include "dns.h"

#include <string.h>
#include <strings.h>

#define HDR_LEN 12
#define TYPE_OPT 41
#define CLASS_IN 1
#define EDNS_UDP_SIZE 1232 /* the DNS flag day 2020 value: no IP fragmentation on common paths */
#define TTL_MAX 0x7fffffffu /* RFC 2181 8: a TTL with the top bit set is read as 0 */

/* Header flag bits (RFC 1035 4.1.1, RFC 4035 3.2.2). */
#define F_QR 0x8000u
#define F_OPCODE 0x7800u
#define F_AA 0x0400u
#define F_TC 0x0200u
#define F_RD 0x0100u
#define F_RA 0x0080u
#define F_CD 0x0010u
#define EDNS_DO 0x8000u

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static int label_byte_ok(uint8_t c)
{
	return c >= 0x21 && c <= 0x7e && c != '.' && c != '\\';
}

static char lower(uint8_t c)
{
	return (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
}

/* The name at *off: lowercased into out, and as sent into orig (may be NULL); *off moves past
 * the name where it is stored (after the first pointer, if any). */
static int read_name(const uint8_t *pkt, size_t len, size_t *off, char out[SBX_DNS_MAX_NAME + 1],
		     char orig[SBX_DNS_MAX_NAME + 1])
{
	size_t pos = *off, seg_start = *off, next = 0, wire = 0, tn = 0;
	unsigned jumps = 0;

	out[0] = '\0';
	if (orig)
		orig[0] = '\0';
	for (;;) {
		uint8_t c;

		if (pos >= len)
			return -1;
		c = pkt[pos];
		if ((c & 0xc0) == 0xc0) {
			size_t target;

			if (len - pos < 2)
				return -1;
			target = (size_t)get16(pkt + pos) & 0x3fff;
			/* Strictly before where this stretch of the name started: every jump lowers
			 * the read position's floor, so following pointers always ends. */
			if (target < HDR_LEN || target >= seg_start || ++jumps > SBX_DNS_MAX_JUMPS)
				return -1;
			if (!next)
				next = pos + 2;
			pos = seg_start = target;
			continue;
		}
		if (c & 0xc0) /* 01 and 10: extended label types (RFC 6891 5), none in use */
			return -1;
		/* c <= 63 here. The wire length counts every length byte and the final root byte. */
		if (wire + 1 + c > SBX_DNS_MAX_NAME)
			return -1;
		wire += 1 + (size_t)c;
		if (c == 0)
			break;
		if (len - pos - 1 < c)
			return -1;
		if (tn) {
			out[tn] = '.';
			if (orig)
				orig[tn] = '.';
			tn++;
		}
		for (size_t i = 1; i <= c; i++) {
			uint8_t b = pkt[pos + i];

			if (!label_byte_ok(b))
				return -1;
			out[tn] = lower(b);
			if (orig)
				orig[tn] = (char)b;
			tn++;
		}
		pos += 1 + (size_t)c;
	}
	/* wire <= 255 keeps tn <= 253: a name of text length t takes t + 2 bytes on the wire. */
	out[tn] = '\0';
	if (orig)
		orig[tn] = '\0';
	*off = next ? next : pos + 1;
	return 0;
}

int sbx_dns_read_name(const uint8_t *pkt, size_t len, size_t *off, char out[SBX_DNS_MAX_NAME + 1])
{
	size_t o = *off;

	if (read_name(pkt, len, &o, out, NULL) < 0) {
		out[0] = '\0';
		return -1;
	}
	*off = o;
	return 0;
}

/* The OPT record of a query (RFC 6891 6.1): root name, type 41, the client's UDP size as class,
 * extended RCODE / version / flags as TTL, then options that must exactly fill its RDATA.
 * Returns 0, FORMERR, or BADVERS (a version other than 0; the rest is valid). */
static int parse_opt(const uint8_t *pkt, size_t len, size_t *off, struct sbx_dns_query *q)
{
	size_t pos = *off, end;
	uint16_t rdlen, flags;
	uint8_t version;

	if (len - pos < 11 || pkt[pos] != 0 || get16(pkt + pos + 1) != TYPE_OPT)
		return SBX_DNS_FORMERR;
	version = pkt[pos + 6];
	flags = get16(pkt + pos + 7);
	rdlen = get16(pkt + pos + 9);
	pos += 11;
	if (len - pos < rdlen)
		return SBX_DNS_FORMERR;
	end = pos + rdlen;
	while (pos < end) {
		if (end - pos < 4 || end - pos - 4 < get16(pkt + pos + 2))
			return SBX_DNS_FORMERR;
		pos += 4 + (size_t)get16(pkt + pos + 2);
	}
	*off = end;
	q->has_edns = 1;
	q->edns_do = (flags & EDNS_DO) != 0;
	return version == 0 ? 0 : SBX_DNS_BADVERS;
}

int sbx_dns_parse_query(const uint8_t *pkt, size_t len, struct sbx_dns_query *q)
{
	size_t off = HDR_LEN;
	int rc = 0;

	memset(q, 0, sizeof(*q));
	if (!pkt || len < HDR_LEN)
		return -1;
	q->id = get16(pkt);
	q->flags = get16(pkt + 2);
	if (q->flags & F_QR)
		return -1;
	if (q->flags & F_OPCODE)
		return SBX_DNS_NOTIMP;
	/* TC in a query means the client could not send all of it: nothing to answer. */
	if ((q->flags & F_TC) || get16(pkt + 4) != 1 || get16(pkt + 6) != 0 || get16(pkt + 8) != 0 ||
	    get16(pkt + 10) > 1)
		return SBX_DNS_FORMERR;
	if (read_name(pkt, len, &off, q->name, q->qname) < 0 || len - off < 4) {
		q->name[0] = q->qname[0] = '\0';
		return SBX_DNS_FORMERR;
	}
	q->qtype = get16(pkt + off);
	q->qclass = get16(pkt + off + 2);
	off += 4;
	q->question_len = off - HDR_LEN;
	if (get16(pkt + 10) == 1)
		rc = parse_opt(pkt, len, &off, q);
	if (rc != SBX_DNS_FORMERR && off != len) /* bytes after the last record */
		rc = SBX_DNS_FORMERR;
	if (rc == SBX_DNS_FORMERR)
		q->has_edns = q->edns_do = 0;
	return rc;
}

/* Encodes a dotted name (no trailing dot, "" for the root) into out; returns its wire length,
 * or 0 if it is not one the parser could have produced. out has room for SBX_DNS_MAX_NAME. */
static size_t encode_name(const char *name, uint8_t *out)
{
	size_t n = strnlen(name, SBX_DNS_MAX_NAME + 1), w = 0, start = 0;

	if (n == 0) {
		out[0] = 0;
		return 1;
	}
	if (n > SBX_DNS_MAX_NAME - 2)
		return 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && name[i] != '.') {
			if (!label_byte_ok((uint8_t)name[i]))
				return 0;
			continue;
		}
		if (i - start < 1 || i - start > 63)
			return 0;
		out[w++] = (uint8_t)(i - start);
		memcpy(out + w, name + start, i - start);
		w += i - start;
		start = i + 1;
	}
	out[w++] = 0;
	return w; /* n + 2 <= 255 */
}

int sbx_dns_build_answer(const struct sbx_dns_query *q, int rcode, const uint8_t ipv4[4], uint32_t ttl,
			 uint8_t *out, size_t outlen)
{
	uint8_t qname[SBX_DNS_MAX_NAME];
	size_t qlen = 0, need = HDR_LEN, pos;
	int has_q;
	unsigned flags;

	if (!q || !out || rcode < 0 || rcode > SBX_DNS_BADVERS || (rcode > 15 && !q->has_edns))
		return -1;
	has_q = q->question_len > 0;
	if ((rcode == SBX_DNS_NOERROR && !has_q) || (ipv4 && rcode != SBX_DNS_NOERROR))
		return -1;
	if (ipv4 && ((q->qtype != SBX_DNS_A && q->qtype != SBX_DNS_ANY) || q->qclass != CLASS_IN))
		return -1;
	if (has_q) {
		/* The case-preserved spelling when it is the same name (the parser sets both), the
		 * lowercase one for a q filled in by hand. */
		const char *src = q->qname;

		if (strncasecmp(q->qname, q->name, sizeof(q->qname)) != 0)
			src = q->name;
		qlen = encode_name(src, qname);
		if (!qlen)
			return -1;
		need += qlen + 4;
	}
	if (ipv4)
		need += 2 + 2 + 2 + 4 + 2 + 4;
	if (q->has_edns)
		need += 1 + 2 + 2 + 4 + 2;
	if (need > outlen)
		return -1;

	/* The opcode is copied (RFC 1035 4.1.1): 0 for every query the parser accepts, the
	 * client's own for a NOTIMP answer, so it can match the answer to its query. */
	flags = F_QR | (q->flags & (F_OPCODE | F_RD | F_CD)) | F_AA | F_RA | ((unsigned)rcode & 0xf);
	put16(out, q->id);
	put16(out + 2, flags);
	put16(out + 4, has_q ? 1 : 0);
	put16(out + 6, ipv4 ? 1 : 0);
	put16(out + 8, 0);
	put16(out + 10, q->has_edns ? 1 : 0);
	pos = HDR_LEN;
	if (has_q) {
		memcpy(out + pos, qname, qlen);
		pos += qlen;
		put16(out + pos, q->qtype);
		put16(out + pos + 2, q->qclass);
		pos += 4;
	}
	if (ipv4) {
		put16(out + pos, 0xc000 | HDR_LEN); /* the question's name */
		put16(out + pos + 2, SBX_DNS_A);
		put16(out + pos + 4, CLASS_IN);
		put32(out + pos + 6, ttl > TTL_MAX ? TTL_MAX : ttl);
		put16(out + pos + 10, 4);
		memcpy(out + pos + 12, ipv4, 4);
		pos += 16;
	}
	if (q->has_edns) {
		out[pos] = 0; /* root */
		put16(out + pos + 1, TYPE_OPT);
		put16(out + pos + 3, EDNS_UDP_SIZE);
		out[pos + 5] = (uint8_t)((unsigned)rcode >> 4); /* extended RCODE, upper 8 bits */
		out[pos + 6] = 0;                               /* version */
		put16(out + pos + 7, q->edns_do ? EDNS_DO : 0);
		put16(out + pos + 9, 0); /* no options */
		pos += 11;
	}
	return (int)pos;
}

int sbx_dns_name_valid(const char *s)
{
	size_t n, label = 0, last = 0;
	int numeric = 1;

	if (!s)
		return 0;
	n = strnlen(s, 254);
	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			last = i + 1;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_'))
			return 0;
		if (++label > 63)
			return 0;
	}
	if (label == 0)
		return 0;
	/* The last label as inet_aton() reads a number: decimal/octal digits, or 0x and hex. */
	if (n - last >= 2 && s[last] == '0' && (s[last + 1] == 'x' || s[last + 1] == 'X')) {
		for (size_t i = last + 2; i < n; i++)
			if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
				numeric = 0;
	} else {
		for (size_t i = last; i < n; i++)
			if (!(s[i] >= '0' && s[i] <= '9'))
				numeric = 0;
	}
	return !numeric;
}
