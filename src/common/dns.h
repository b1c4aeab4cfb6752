/* dns.h - the small part of DNS that the sandbox resolver needs (RFC 1035), written for bytes
 * the sandbox controls: every length is checked against the packet, name compression pointers
 * may only point backwards and are followed a bounded number of times, names are limited to 255
 * bytes and labels to 63. */
#ifndef SBX_DNS_H
#define SBX_DNS_H

#include <stddef.h>
#include <stdint.h>

#define SBX_DNS_MAX_PACKET 4096 /* UDP queries we accept; TCP messages up to 65535 */
#define SBX_DNS_MAX_NAME 255
#define SBX_DNS_MAX_JUMPS 16    /* compression pointers followed in one name */
#define SBX_DNS_MAX_ANSWER 512  /* what sbx_dns_build_answer() can need (it needs <= 298) */

enum { SBX_DNS_A = 1, SBX_DNS_NS = 2, SBX_DNS_CNAME = 5, SBX_DNS_SOA = 6, SBX_DNS_PTR = 12, SBX_DNS_MX = 15,
       SBX_DNS_TXT = 16, SBX_DNS_AAAA = 28, SBX_DNS_SRV = 33, SBX_DNS_HTTPS = 65, SBX_DNS_ANY = 255 };
enum { SBX_DNS_NOERROR = 0, SBX_DNS_FORMERR = 1, SBX_DNS_SERVFAIL = 2, SBX_DNS_NXDOMAIN = 3,
       SBX_DNS_NOTIMP = 4, SBX_DNS_REFUSED = 5,
       SBX_DNS_BADVERS = 16 /* extended RCODE (needs EDNS): the query's EDNS version is not 0 */ };

struct sbx_dns_query {
	uint16_t id;
	uint16_t flags;   /* as received */
	char name[SBX_DNS_MAX_NAME + 1]; /* lowercased, dotted, no trailing dot ("" for the root) */
	uint16_t qtype;
	uint16_t qclass;
	size_t question_len; /* bytes of the question section, to echo it */
	int has_edns;        /* an OPT record was present in the additional section */
	int edns_do;         /* its DO bit, which the answer's OPT record copies (RFC 3225) */
	char qname[SBX_DNS_MAX_NAME + 1]; /* name with the case it was sent in: the answer echoes it */
};

/* Parses a query: exactly one question, QR=0, opcode 0 (QUERY). Returns 0, or an RCODE
 * (FORMERR, NOTIMP, ...) to answer with when the header at least had an id (q->id set), or -1
 * for a packet too broken to answer. A response (QR=1) is -1 too: answering one could start a
 * loop between two servers. Label bytes other than printable ASCII, and '.' or '\\' inside a
 * label, are FORMERR, so q->name is unambiguous and safe to log; other unusual bytes ('*', '/')
 * parse, and sbx_dns_name_valid() tells the caller to refuse them. question_len is 0 when the
 * question was not parsed (the answer then carries no question). */
int sbx_dns_parse_query(const uint8_t *pkt, size_t len, struct sbx_dns_query *q);

/* Builds an answer to q into out (cap outlen). rcode NOERROR with ipv4 != NULL answers one A
 * record with the given TTL; NOERROR with ipv4 == NULL is NODATA. Returns the length or -1.
 * The answer re-encodes the question from q (not a copy of the query's bytes) and points its A
 * record's name at it; it has an OPT record (UDP size 1232) when the query had one. At most
 * SBX_DNS_MAX_ANSWER bytes. -1 also for a call that makes no sense: an address with an RCODE
 * other than NOERROR or for a question other than A/ANY in class IN, NOERROR without a question,
 * BADVERS without EDNS. */
int sbx_dns_build_answer(const struct sbx_dns_query *q, int rcode, const uint8_t ipv4[4], uint32_t ttl,
			 uint8_t *out, size_t outlen);

/* Reads the name at *off in pkt[0..len) into out, lowercased and dotted without a trailing dot
 * ("" for the root), and moves *off past it. Same rules as for the question: labels <= 63 bytes
 * of printable ASCII other than '.' and '\\', <= 255 bytes on the wire, compression pointers
 * only to offsets >= 12 (after the header) and strictly before the part of the name being read
 * (so no loop is possible), at most SBX_DNS_MAX_JUMPS of them. Returns 0 or -1. */
int sbx_dns_read_name(const uint8_t *pkt, size_t len, size_t *off, char out[SBX_DNS_MAX_NAME + 1]);

/* Is s a valid host name for DNS (LDH labels, underscores allowed, 1..63 per label, <= 253)?
 * Also no: a name whose last label is a number ("10.0.0.1", "host.0x7f"), which inet_aton()
 * and getaddrinfo() would take for an IPv4 address. */
int sbx_dns_name_valid(const char *s);

#endif
