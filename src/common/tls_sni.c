/* tls_sni.c - the server name and ALPN of a TLS ClientHello (RFC 8446 4.1.2, RFC 5246 7.4.1.2,
 * RFC 6066 3, RFC 7301 3.1), read from the first bytes of a stream without doing TLS.
 *
 * The proxy decides where a transparent connection may go from this name, so the parser is
 * strict and never guesses:
 *   - Records: handshake content type, one legacy version 0x0301..0x0304 for all of them,
 *     1..2^14+256 bytes each, at most SBX_TLS_MAX_RECORDS. Their payloads are gathered into a
 *     bounded local buffer until the ClientHello (at most SBX_TLS_MAX_HELLO bytes of body) is
 *     complete; a record reaching past the end of the ClientHello is BAD (nothing may share a
 *     record with it: RFC 8446 5.1 wants the record boundary there before a key change).
 *   - Every vector length is checked against the structure that contains it as soon as it is
 *     read, and every list must fill its container exactly.
 *   - Fragmentation cannot change the answer. The whole input is rescanned on every call (it is
 *     bounded), and each read first checks the declared bounds (BAD) and only then whether the
 *     bytes have arrived (NEED_MORE); so NEED_MORE means the bytes so far can still become a valid
 *     ClientHello, and a longer input gets the same verdict. The fuzz target checks this.
 *   - The server name must be a single host_name that sbx_dns_name_valid() accepts (which also
 *     rules out IPv4 literals; IPv6 literals fail its character set), and is lowercased. */
#include "tls_sni.h"

#include <string.h>

#include "dns.h"

#define CT_HANDSHAKE 22
#define REC_HDR 5
#define REC_MAX (16384 + 256) /* TLSCiphertext bound; a plaintext record is at most 2^14 */
#define HS_HDR 4
#define HS_CLIENT_HELLO 1
#define MSG_MAX (HS_HDR + SBX_TLS_MAX_HELLO)
#define EXT_SERVER_NAME 0
#define EXT_ALPN 16
#define NAME_TYPE_HOST 0

typedef enum sbx_sni_result res_t;

/* A cursor over the ClientHello body: avail bytes have arrived, pos <= avail. */
struct rd {
	const uint8_t *p;
	size_t avail;
	size_t pos;
};

/* Can n more bytes be read at r->pos inside a structure that ends at lim? */
static res_t need(const struct rd *r, size_t lim, size_t n)
{
	if (n > lim - r->pos)
		return SBX_SNI_BAD;
	if (n > r->avail - r->pos)
		return SBX_SNI_NEED_MORE;
	return SBX_SNI_OK;
}

static res_t get8(struct rd *r, size_t lim, size_t *v)
{
	res_t e = need(r, lim, 1);

	if (e != SBX_SNI_OK)
		return e;
	*v = r->p[r->pos++];
	return SBX_SNI_OK;
}

static res_t get16(struct rd *r, size_t lim, size_t *v)
{
	res_t e = need(r, lim, 2);

	if (e != SBX_SNI_OK)
		return e;
	*v = (size_t)r->p[r->pos] << 8 | r->p[r->pos + 1];
	r->pos += 2;
	return SBX_SNI_OK;
}

static res_t skip(struct rd *r, size_t lim, size_t n)
{
	res_t e = need(r, lim, n);

	if (e == SBX_SNI_OK)
		r->pos += n;
	return e;
}

static int host_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Could p[0..n) start a valid host name? For an early BAD on a partly received name. */
static int host_prefix_ok(const uint8_t *p, size_t n)
{
	size_t label = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (!host_char(p[i]) || ++label > 63) {
			return 0;
		}
	}
	return 1;
}

/* server_name (RFC 6066 3): a ServerNameList holding exactly one host_name. */
static res_t parse_server_name(struct rd *r, size_t lim, struct sbx_sni *res)
{
	size_t list_len, type, name_len, have;
	res_t e;

	if ((e = get16(r, lim, &list_len)) != SBX_SNI_OK)
		return e;
	if (list_len == 0 || list_len != lim - r->pos)
		return SBX_SNI_BAD;
	if ((e = get8(r, lim, &type)) != SBX_SNI_OK)
		return e;
	if (type != NAME_TYPE_HOST)
		return SBX_SNI_BAD;
	if ((e = get16(r, lim, &name_len)) != SBX_SNI_OK)
		return e;
	/* The one entry fills the list: a second one (of any type) is BAD. */
	if (name_len == 0 || name_len > 253 || name_len != lim - r->pos)
		return SBX_SNI_BAD;
	have = r->avail - r->pos < name_len ? r->avail - r->pos : name_len;
	if (!host_prefix_ok(r->p + r->pos, have))
		return SBX_SNI_BAD;
	if (have < name_len)
		return SBX_SNI_NEED_MORE;
	for (size_t i = 0; i < name_len; i++) {
		uint8_t c = r->p[r->pos + i];

		res->host[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	res->host[name_len] = '\0';
	r->pos += name_len;
	return sbx_dns_name_valid(res->host) ? SBX_SNI_OK : SBX_SNI_BAD;
}

static int alpn_printable(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',')
			return 0;
	return 1;
}

/* application_layer_protocol_negotiation (RFC 7301 3.1): a non-empty list of non-empty names. */
static res_t parse_alpn(struct rd *r, size_t lim, struct sbx_sni *res)
{
	size_t list_len, n = 0, plen;
	int full = 0;
	res_t e;

	if ((e = get16(r, lim, &list_len)) != SBX_SNI_OK)
		return e;
	if (list_len == 0 || list_len != lim - r->pos)
		return SBX_SNI_BAD;
	while (r->pos < lim) {
		if ((e = get8(r, lim, &plen)) != SBX_SNI_OK)
			return e;
		if (plen == 0)
			return SBX_SNI_BAD;
		if ((e = need(r, lim, plen)) != SBX_SNI_OK)
			return e;
		if (!full && alpn_printable(r->p + r->pos, plen)) {
			size_t add = plen + (n ? 1 : 0);

			if (add < sizeof(res->alpn) - n) {
				if (n)
					res->alpn[n++] = ',';
				memcpy(res->alpn + n, r->p + r->pos, plen);
				n += plen;
				res->alpn[n] = '\0';
			} else {
				full = 1; /* keep the list a prefix of what was offered */
			}
		}
		r->pos += plen;
	}
	return SBX_SNI_OK;
}

/* The ClientHello body: avail of its end bytes have arrived. */
static res_t parse_client_hello(const uint8_t *body, size_t avail, size_t end, struct sbx_sni *res)
{
	struct rd r = {body, avail, 0};
	uint8_t seen[65536 / 8]; /* extension types met so far */
	size_t v, len, ext_end;
	int has_null = 0;
	res_t e;

	/* legacy_version: TLS 1.0 .. 1.3 (TLS 1.3 clients send 0x0303 here). */
	if ((e = get16(&r, end, &v)) != SBX_SNI_OK)
		return e;
	if (v < 0x0301 || v > 0x0304)
		return SBX_SNI_BAD;
	res->version = (uint16_t)v;
	if ((e = skip(&r, end, 32)) != SBX_SNI_OK) /* random */
		return e;
	if ((e = get8(&r, end, &len)) != SBX_SNI_OK)
		return e;
	if (len > 32)
		return SBX_SNI_BAD;
	if ((e = skip(&r, end, len)) != SBX_SNI_OK) /* legacy_session_id */
		return e;
	if ((e = get16(&r, end, &len)) != SBX_SNI_OK)
		return e;
	if (len == 0 || len % 2)
		return SBX_SNI_BAD;
	if ((e = skip(&r, end, len)) != SBX_SNI_OK) /* cipher_suites */
		return e;
	if ((e = get8(&r, end, &len)) != SBX_SNI_OK)
		return e;
	if (len == 0)
		return SBX_SNI_BAD;
	if ((e = need(&r, end, len)) != SBX_SNI_OK)
		return e;
	/* legacy_compression_methods must offer "null" (RFC 5246 7.4.1.2, RFC 8446 4.1.2). */
	for (size_t i = 0; i < len; i++)
		has_null |= r.p[r.pos + i] == 0;
	if (!has_null)
		return SBX_SNI_BAD;
	r.pos += len;
	if (r.pos == end) /* no extensions: allowed before TLS 1.3 */
		return SBX_SNI_OK;

	if ((e = get16(&r, end, &len)) != SBX_SNI_OK)
		return e;
	if (len != end - r.pos)
		return SBX_SNI_BAD;
	ext_end = end;
	memset(seen, 0, sizeof(seen));
	while (r.pos < ext_end) {
		size_t type, elen, lim;

		if ((e = get16(&r, ext_end, &type)) != SBX_SNI_OK || (e = get16(&r, ext_end, &elen)) != SBX_SNI_OK)
			return e;
		if (seen[type / 8] & (1u << (type % 8)))
			return SBX_SNI_BAD; /* RFC 8446 4.2: no two extensions of one type */
		seen[type / 8] |= (uint8_t)(1u << (type % 8));
		if ((e = need(&r, ext_end, elen)) == SBX_SNI_BAD)
			return e;
		lim = r.pos + elen;
		if (type == EXT_SERVER_NAME)
			e = parse_server_name(&r, lim, res);
		else if (type == EXT_ALPN)
			e = parse_alpn(&r, lim, res);
		else
			e = skip(&r, lim, elen);
		if (e != SBX_SNI_OK)
			return e; /* each of the three ends exactly at lim when it succeeds */
	}
	return SBX_SNI_OK;
}

/* What the first have (< 4 or = 4) bytes of the handshake header allow: BAD, or OK with
 * *total set once all four are there. */
static res_t check_hs_header(const uint8_t *msg, size_t have, size_t *total)
{
	if (have >= 1 && msg[0] != HS_CLIENT_HELLO)
		return SBX_SNI_BAD;
	if (have >= 2 && msg[1] != 0) /* uint24 length, at most 2^14 */
		return SBX_SNI_BAD;
	if (have >= 3 && ((size_t)msg[2] << 8) > SBX_TLS_MAX_HELLO)
		return SBX_SNI_BAD;
	if (have == HS_HDR) {
		size_t hs_len = (size_t)msg[2] << 8 | msg[3];

		if (hs_len > SBX_TLS_MAX_HELLO)
			return SBX_SNI_BAD;
		*total = HS_HDR + hs_len;
	}
	return SBX_SNI_OK;
}

enum sbx_sni_result sbx_sni_parse(const uint8_t *buf, size_t len, struct sbx_sni *out)
{
	uint8_t msg[MSG_MAX]; /* the handshake message, gathered from the records */
	size_t have = 0, total = 0, pos = 0, nrec = 0;
	uint8_t minor = 0;
	struct sbx_sni res;
	res_t e;

	memset(out, 0, sizeof(*out));
	memset(&res, 0, sizeof(res));
	if (!buf)
		len = 0;
	while (total == 0 || have < total) {
		size_t avail = len - pos, reclen, take, before = have, used = 0;

		/* The record header, checked as far as it has arrived. A first record that is not
		 * a TLS handshake record is some other protocol; a later one is a broken hello. */
		if (avail == 0)
			break;
		if (buf[pos] != CT_HANDSHAKE)
			return pos == 0 ? SBX_SNI_NOT_TLS : SBX_SNI_BAD;
		if (avail < 2)
			break;
		if (buf[pos + 1] != 3)
			return pos == 0 ? SBX_SNI_NOT_TLS : SBX_SNI_BAD;
		if (avail < 3)
			break;
		/* 0x0300 is SSL 3.0, which nothing may speak any more (RFC 7568). */
		if (buf[pos + 2] < 1 || buf[pos + 2] > 4 || (nrec > 0 && buf[pos + 2] != minor))
			return SBX_SNI_BAD;
		minor = buf[pos + 2];
		if (avail < REC_HDR) {
			if (avail == 4 && ((size_t)buf[pos + 3] << 8) > REC_MAX)
				return SBX_SNI_BAD;
			break;
		}
		reclen = (size_t)buf[pos + 3] << 8 | buf[pos + 4];
		if (reclen == 0 || reclen > REC_MAX)
			return SBX_SNI_BAD;
		nrec++;

		take = avail - REC_HDR < reclen ? avail - REC_HDR : reclen;
		if (have < HS_HDR) {
			used = take < HS_HDR - have ? take : HS_HDR - have;
			memcpy(msg + have, buf + pos + REC_HDR, used);
			have += used;
			if (check_hs_header(msg, have, &total) != SBX_SNI_OK)
				return SBX_SNI_BAD;
		}
		/* Once the length is known, no record may reach past the message: this also keeps
		 * the copy below inside msg (have + take - used <= before + reclen <= total). */
		if (total && before + reclen > total)
			return SBX_SNI_BAD;
		memcpy(msg + have, buf + pos + REC_HDR + used, take - used);
		have += take - used;
		if (take < reclen)
			break;
		pos += REC_HDR + reclen;
		/* The last record allowed, and the hello goes on: no need to wait for more. */
		if (nrec == SBX_TLS_MAX_RECORDS && (total == 0 || have < total))
			return SBX_SNI_BAD;
	}
	if (total == 0)
		return SBX_SNI_NEED_MORE; /* the handshake header so far was checked above */
	e = parse_client_hello(msg + HS_HDR, have - HS_HDR, total - HS_HDR, &res);
	if (e != SBX_SNI_OK)
		return e;
	/* A complete parse reads exactly total bytes, so the loop above ended on a record
	 * boundary with the whole message: pos is where the next record starts. */
	res.hello_len = pos;
	*out = res;
	return SBX_SNI_OK;
}
