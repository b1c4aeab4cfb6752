/* test_sni.c - the ClientHello parser (src/common/tls_sni.c): a ClientHello captured from
 * `openssl s_client -connect 127.0.0.1:PORT -servername example.com` (OpenSSL 3.0, TLS 1.3), and
 * hellos made by a small builder, split into records and fragments in every way, with each
 * kind of broken length, duplicate, and bad server name. Every case is also checked for
 * consistency under fragmentation: each prefix of the input must be NEED_MORE or the input's
 * own verdict. */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "tls_sni.h"

/* Captured with a loopback listener that saved the first bytes s_client sent (317 bytes: one
 * record; extensions server_name, ec_point_formats, supported_groups, session_ticket,
 * encrypt_then_mac, extended_master_secret, signature_algorithms, supported_versions,
 * psk_key_exchange_modes, key_share). Also fuzz/corpus/sni/openssl-s_client-tls13. */
static const uint8_t openssl_hello[] = {
	0x16, 0x03, 0x01, 0x01, 0x38, 0x01, 0x00, 0x01, 0x34, 0x03, 0x03, 0x5a, 0x7c, 0x04, 0xdc, 0xb6,
	0xf2, 0x1e, 0x11, 0xe3, 0xaf, 0x97, 0x12, 0x6e, 0x8b, 0x17, 0xbe, 0x95, 0x7a, 0x45, 0xd4, 0x53,
	0xb2, 0x62, 0xa3, 0x7a, 0x52, 0xcb, 0x2b, 0xa0, 0x63, 0x40, 0xe2, 0x20, 0x30, 0x4e, 0x0b, 0x37,
	0x25, 0xd3, 0x38, 0x3e, 0x1e, 0x59, 0x5d, 0x12, 0x09, 0x6c, 0xae, 0xf5, 0xcd, 0x09, 0xf5, 0x67,
	0xda, 0x52, 0x94, 0x67, 0xf2, 0x73, 0x17, 0x8a, 0x34, 0xcc, 0x0a, 0x2e, 0x00, 0x3e, 0x13, 0x02,
	0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
	0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27,
	0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d,
	0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0xad,
	0x00, 0x00, 0x00, 0x10, 0x00, 0x0e, 0x00, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65,
	0x2e, 0x63, 0x6f, 0x6d, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16,
	0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x01, 0x00, 0x01, 0x01,
	0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17,
	0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07,
	0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01,
	0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02,
	0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00, 0x2d, 0x00,
	0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0x09, 0xb8, 0xdf,
	0xa8, 0xa0, 0xe2, 0x56, 0x71, 0x65, 0x97, 0x61, 0x30, 0x49, 0x03, 0x8b, 0xb5, 0xcf, 0x29, 0xdf,
	0x71, 0xa3, 0x63, 0x3f, 0x8d, 0x89, 0x06, 0x75, 0x6a, 0x3f, 0xaa, 0x53, 0x3c,
};

#define MSG_CAP (SBX_TLS_MAX_HELLO + 64)
#define REC_CAP (SBX_TLS_MAX_INPUT + 4096)

static const char *res_name(enum sbx_sni_result r)
{
	switch (r) {
	case SBX_SNI_OK:
		return "OK";
	case SBX_SNI_NEED_MORE:
		return "NEED_MORE";
	case SBX_SNI_NOT_TLS:
		return "NOT_TLS";
	case SBX_SNI_BAD:
		return "BAD";
	}
	return "?";
}

/* ---- a ClientHello builder ---- */

struct msg {
	uint8_t b[MSG_CAP];
	size_t n;
	size_t ext_at; /* offset of the extensions length */
};

static void put8(struct msg *m, unsigned v)
{
	if (m->n < sizeof(m->b))
		m->b[m->n++] = (uint8_t)v;
}

static void put16(struct msg *m, unsigned v)
{
	put8(m, v >> 8);
	put8(m, v);
}

static void putn(struct msg *m, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put8(m, ((const uint8_t *)p)[i]);
}

static void set16(struct msg *m, size_t at, size_t v)
{
	m->b[at] = (uint8_t)(v >> 8);
	m->b[at + 1] = (uint8_t)v;
}

/* Handshake header, legacy_version, random, session id, three cipher suites, null compression,
 * and the start of the extensions. */
static void hello_begin(struct msg *m, unsigned version, size_t sid_len)
{
	m->n = 0;
	put8(m, 1);
	put8(m, 0);
	put16(m, 0); /* length, patched by hello_end */
	put16(m, version);
	for (unsigned i = 0; i < 32; i++)
		put8(m, i * 7 + 1);
	put8(m, (unsigned)sid_len);
	for (size_t i = 0; i < sid_len; i++)
		put8(m, 0xa0 + (unsigned)i);
	put16(m, 6);
	put16(m, 0x1301);
	put16(m, 0x1302);
	put16(m, 0xc02f);
	put8(m, 1);
	put8(m, 0);
	m->ext_at = m->n;
	put16(m, 0);
}

static void hello_end(struct msg *m)
{
	set16(m, m->ext_at, m->n - m->ext_at - 2);
	m->b[1] = (uint8_t)((m->n - 4) >> 16);
	set16(m, 2, m->n - 4);
}

static void ext_raw(struct msg *m, unsigned type, const void *data, size_t len)
{
	put16(m, type);
	put16(m, (unsigned)len);
	putn(m, data, len);
}

static void ext_sni_n(struct msg *m, const char *host, size_t len)
{
	put16(m, 0);
	put16(m, (unsigned)len + 5);
	put16(m, (unsigned)len + 3);
	put8(m, 0);
	put16(m, (unsigned)len);
	putn(m, host, len);
}

static void ext_sni(struct msg *m, const char *host)
{
	ext_sni_n(m, host, strlen(host));
}

/* protos: NULL-terminated. */
static void ext_alpn(struct msg *m, const char *const *protos)
{
	size_t n = 0;

	for (size_t i = 0; protos[i]; i++)
		n += 1 + strlen(protos[i]);
	put16(m, 16);
	put16(m, (unsigned)n + 2);
	put16(m, (unsigned)n);
	for (size_t i = 0; protos[i]; i++) {
		put8(m, (unsigned)strlen(protos[i]));
		putn(m, protos[i], strlen(protos[i]));
	}
}

/* A plain modern hello for host (NULL: no server_name), ALPN h2 + http/1.1. */
static void hello_basic(struct msg *m, const char *host)
{
	static const char *const alpn[] = {"h2", "http/1.1", NULL};
	static const uint8_t versions[] = {4, 0x03, 0x04, 0x03, 0x03};

	hello_begin(m, 0x0303, 32);
	if (host)
		ext_sni(m, host);
	ext_alpn(m, alpn);
	ext_raw(m, 43, versions, sizeof(versions));
	hello_end(m);
}

/* ---- records ---- */

/* Wraps the message in records: sizes[i] bytes in record i (0 ends the list), the rest in a
 * last record. Returns the stream length. */
static size_t wrap_sizes(const uint8_t *msg, size_t n, const size_t *sizes, unsigned version, uint8_t *out)
{
	size_t off = 0, o = 0;

	for (size_t i = 0; off < n; i++) {
		size_t k = sizes && sizes[i] ? sizes[i] : n - off;

		if (k > n - off)
			k = n - off;
		out[o++] = 22;
		out[o++] = (uint8_t)(version >> 8);
		out[o++] = (uint8_t)version;
		out[o++] = (uint8_t)(k >> 8);
		out[o++] = (uint8_t)k;
		memcpy(out + o, msg + off, k);
		o += k;
		off += k;
		if (sizes && !sizes[i])
			sizes = NULL;
	}
	return o;
}

static size_t wrap(const uint8_t *msg, size_t n, uint8_t *out)
{
	return wrap_sizes(msg, n, NULL, 0x0301, out);
}

/* ---- checks ---- */

/* Parses an exact-size heap copy, so ASan sees any read past the end. */
static enum sbx_sni_result parse(const uint8_t *p, size_t n, struct sbx_sni *s)
{
	uint8_t *c = malloc(n ? n : 1);
	enum sbx_sni_result r;

	if (!c)
		abort();
	if (n)
		memcpy(c, p, n);
	r = sbx_sni_parse(c, n, s);
	free(c);
	return r;
}

/* Every prefix of p[0..n) must be NEED_MORE, or the whole input's verdict (with the same
 * hello_len and host for OK). Returns 1 when so. */
static int prefixes_ok(const uint8_t *p, size_t n)
{
	struct sbx_sni whole, s;
	enum sbx_sni_result w = parse(p, n, &whole);

	for (size_t k = 0; k < n; k++) {
		enum sbx_sni_result r = parse(p, k, &s);
		int good;

		if (w == SBX_SNI_OK && k < whole.hello_len)
			good = r == SBX_SNI_NEED_MORE;
		else if (w == SBX_SNI_OK)
			good = r == SBX_SNI_OK && s.hello_len == whole.hello_len && strcmp(s.host, whole.host) == 0;
		else
			good = r == SBX_SNI_NEED_MORE || r == w;
		if (r == SBX_SNI_NEED_MORE)
			good = good && s.host[0] == '\0' && s.hello_len == 0;
		if (!good) {
			diag("prefix %zu of %zu: %s, whole input %s", k, n, res_name(r), res_name(w));
			return 0;
		}
	}
	return 1;
}

static void expect(const char *what, const uint8_t *p, size_t n, enum sbx_sni_result want, const char *host)
{
	struct sbx_sni s;
	enum sbx_sni_result r = parse(p, n, &s);

	if (!ok(r == want && (want != SBX_SNI_OK || strcmp(s.host, host) == 0), "%s: %s", what, res_name(want)))
		diag("got %s host '%s'", res_name(r), s.host);
	ok(prefixes_ok(p, n), "%s: every prefix is NEED_MORE or %s", what, res_name(want));
}

static void expect_msg(const char *what, const struct msg *m, enum sbx_sni_result want, const char *host)
{
	static uint8_t rec[REC_CAP];
	size_t n = wrap(m->b, m->n, rec);

	expect(what, rec, n, want, host);
}

/* ---- tests ---- */

static void test_captured(void)
{
	static uint8_t buf[REC_CAP];
	size_t n = sizeof(openssl_hello), msg_len = n - 5;
	struct sbx_sni s;
	int all = 1;

	is_int(sbx_sni_parse(openssl_hello, n, &s), SBX_SNI_OK, "captured openssl s_client hello parses");
	is_str(s.host, "example.com", "its server name");
	is_int(s.hello_len, n, "hello_len is the whole record");
	is_int(s.version, 0x0303, "legacy_version 0x0303");
	is_str(s.alpn, "", "no ALPN offered");
	ok(prefixes_ok(openssl_hello, n), "fed one byte more at a time: NEED_MORE until the last byte, then OK");

	/* What follows the hello (here a ChangeCipherSpec record) is not part of it. */
	memcpy(buf, openssl_hello, n);
	memcpy(buf + n, "\x14\x03\x03\x00\x01\x01", 6);
	is_int(parse(buf, n + 6, &s), SBX_SNI_OK, "hello followed by another record");
	is_int(s.hello_len, n, "hello_len stops at the hello's last record");

	/* The same message split into two records at every possible point. */
	for (size_t cut = 1; cut < msg_len && all; cut++) {
		size_t sizes[] = {cut, 0};
		size_t len = wrap_sizes(openssl_hello + 5, msg_len, sizes, 0x0301, buf);

		if (parse(buf, len, &s) != SBX_SNI_OK || s.hello_len != len || len != n + 5 ||
		    strcmp(s.host, "example.com") != 0) {
			diag("split at %zu", cut);
			all = 0;
		}
	}
	ok(all, "split into two records at each of the %zu points: OK, hello_len covers both", msg_len - 1);
	{
		size_t sizes[] = {100, 0};
		size_t len = wrap_sizes(openssl_hello + 5, msg_len, sizes, 0x0301, buf);

		ok(prefixes_ok(buf, len), "two-record hello fed byte by byte: NEED_MORE then OK");
	}
	{
		size_t sizes[] = {1, 1, 1, 1, 1, 1, 1, 1, 0};
		size_t len = wrap_sizes(openssl_hello + 5, msg_len, sizes, 0x0303, buf);

		expect("handshake header spread over four one-byte records", buf, len, SBX_SNI_OK, "example.com");
	}
}

static void test_builder_hellos(void)
{
	static struct msg m;
	static const uint8_t grease_empty[] = {0};
	static const char *const alpn_grease[] = {"\x0a\x0a", "h2", "http/1.1", NULL};
	static const char *const alpn_many[] = {"protocol-name-01", "protocol-name-02", "protocol-name-03",
						"protocol-name-04", "protocol-name-05", NULL};
	static uint8_t buf[REC_CAP];
	struct sbx_sni s;
	size_t n;

	hello_basic(&m, "example.com");
	n = wrap(m.b, m.n, buf);
	is_int(parse(buf, n, &s), SBX_SNI_OK, "built TLS 1.3 hello");
	is_str(s.host, "example.com", "host");
	is_str(s.alpn, "h2,http/1.1", "ALPN list");
	is_int(s.hello_len, n, "hello_len");

	hello_basic(&m, "WWW.Example.COM");
	expect_msg("uppercase server name", &m, SBX_SNI_OK, "www.example.com");
	hello_basic(&m, NULL);
	expect_msg("no server_name extension: OK with empty host", &m, SBX_SNI_OK, "");
	hello_basic(&m, "_acme-challenge.a-b.example.org");
	expect_msg("underscore and hyphen", &m, SBX_SNI_OK, "_acme-challenge.a-b.example.org");
	hello_basic(&m, "123.example");
	expect_msg("numeric first label", &m, SBX_SNI_OK, "123.example");

	/* Chrome-style GREASE: reserved extension types, two of them (distinct), and a GREASE
	 * ALPN value, which is not printable and is left out of the text. */
	hello_begin(&m, 0x0303, 32);
	ext_raw(&m, 0x0a0a, NULL, 0);
	ext_sni(&m, "www.google.com");
	ext_alpn(&m, alpn_grease);
	ext_raw(&m, 0x3a3a, grease_empty, 1);
	hello_end(&m);
	n = wrap(m.b, m.n, buf);
	is_int(parse(buf, n, &s), SBX_SNI_OK, "GREASE extensions and ALPN value");
	is_str(s.alpn, "h2,http/1.1", "GREASE ALPN value left out of the text");

	hello_begin(&m, 0x0303, 0);
	ext_alpn(&m, alpn_many);
	hello_end(&m);
	n = wrap(m.b, m.n, buf);
	is_int(parse(buf, n, &s), SBX_SNI_OK, "long ALPN list");
	is_str(s.alpn, "protocol-name-01,protocol-name-02,protocol-name-03", "truncated at a whole name");

	/* The text holds 63 bytes: a name that fills it exactly is kept, one more is not. */
	{
		static char p63[64], p64[65], p60[61], p61[62];
		const char *const one63[] = {p63, NULL}, *const one64[] = {p64, NULL};
		const char *const h2_60[] = {"h2", p60, NULL}, *const h2_61[] = {"h2", p61, NULL};

		memset(p63, 'x', 63);
		memset(p64, 'y', 64);
		memset(p60, 'z', 60);
		memset(p61, 'w', 61);
		hello_begin(&m, 0x0303, 0);
		ext_alpn(&m, one63);
		hello_end(&m);
		n = wrap(m.b, m.n, buf);
		ok(parse(buf, n, &s) == SBX_SNI_OK && strcmp(s.alpn, p63) == 0, "63-byte ALPN name fills the text");
		hello_begin(&m, 0x0303, 0);
		ext_alpn(&m, one64);
		hello_end(&m);
		n = wrap(m.b, m.n, buf);
		ok(parse(buf, n, &s) == SBX_SNI_OK && s.alpn[0] == '\0', "64-byte ALPN name does not fit: left out");
		hello_begin(&m, 0x0303, 0);
		ext_alpn(&m, h2_60);
		hello_end(&m);
		n = wrap(m.b, m.n, buf);
		ok(parse(buf, n, &s) == SBX_SNI_OK && strlen(s.alpn) == 63 && strncmp(s.alpn, "h2,zzz", 6) == 0,
		   "h2 and a 60-byte name: 63 bytes, both kept");
		hello_begin(&m, 0x0303, 0);
		ext_alpn(&m, h2_61);
		hello_end(&m);
		n = wrap(m.b, m.n, buf);
		ok(parse(buf, n, &s) == SBX_SNI_OK && strcmp(s.alpn, "h2") == 0, "h2 and a 61-byte name: only h2");
	}

	/* TLS 1.2 style: no extensions at all, no session id. */
	hello_begin(&m, 0x0303, 0);
	m.n = m.ext_at;
	m.b[1] = 0;
	set16(&m, 2, m.n - 4);
	expect_msg("no extensions block", &m, SBX_SNI_OK, "");
	hello_begin(&m, 0x0303, 0);
	hello_end(&m);
	expect_msg("empty extensions block", &m, SBX_SNI_OK, "");
	hello_begin(&m, 0x0301, 0);
	ext_sni(&m, "old.example");
	hello_end(&m);
	n = wrap_sizes(m.b, m.n, NULL, 0x0301, buf);
	is_int(parse(buf, n, &s), SBX_SNI_OK, "TLS 1.0 hello");
	is_int(s.version, 0x0301, "legacy_version 0x0301 reported");
}

static void test_names(void)
{
	static struct msg m;
	static const struct {
		const char *host;
		const char *why;
	} bad[] = {
		{"192.0.2.1", "IPv4 literal"},
		{"10", "a bare number"},
		{"example.0x7f", "a name inet_aton takes for an address"},
		{"127.1", "short IPv4 form"},
		{"[::1]", "IPv6 literal in brackets"},
		{"2001:db8::1", "IPv6 literal"},
		{"example.com.", "trailing dot"},
		{".example.com", "leading dot"},
		{"a..example.com", "empty label"},
		{"exa mple.com", "space"},
		{"exa*mple.com", "'*'"},
		{"example.com:443", "port"},
		{"ex\xc3\xa4mple.com", "UTF-8 instead of an A-label"},
	};
	char name[300];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hello_basic(&m, bad[i].host);
		expect_msg(bad[i].why, &m, SBX_SNI_BAD, NULL);
	}
	hello_begin(&m, 0x0303, 32);
	ext_sni_n(&m, "exa\0mple.com", 12);
	hello_end(&m);
	expect_msg("NUL inside the name", &m, SBX_SNI_BAD, NULL);

	memset(name, 'a', 63);
	memcpy(name + 63, ".example", 9);
	hello_basic(&m, name);
	expect_msg("63-byte label", &m, SBX_SNI_OK, name);
	memset(name, 'a', 64);
	memcpy(name + 64, ".example", 9);
	hello_basic(&m, name);
	expect_msg("64-byte label", &m, SBX_SNI_BAD, NULL);
	/* 253 bytes: four 63-byte labels minus one, with dots. */
	for (size_t i = 0; i < 253; i++)
		name[i] = (i % 64 == 63) ? '.' : 'b';
	name[253] = '\0';
	hello_basic(&m, name);
	expect_msg("253-byte name", &m, SBX_SNI_OK, name);
	name[253] = 'b';
	name[254] = '\0';
	hello_basic(&m, name);
	expect_msg("254-byte name", &m, SBX_SNI_BAD, NULL);

	/* A bad byte is BAD as soon as it arrives, not only once the hello is complete. */
	{
		static uint8_t buf[REC_CAP];
		struct sbx_sni s;
		size_t n, at;

		hello_basic(&m, "www.exa!mple.com");
		n = wrap(m.b, m.n, buf);
		at = (size_t)((uint8_t *)memchr(buf, '!', n) - buf);
		is_int(parse(buf, at, &s), SBX_SNI_NEED_MORE, "name cut before the bad byte: NEED_MORE");
		is_int(parse(buf, at + 1, &s), SBX_SNI_BAD, "name cut just after the bad byte: already BAD");
	}
}

static void test_server_name_ext(void)
{
	static struct msg m;
	static const uint8_t two_names[] = {0x00, 0x12, 0, 0x00, 0x07, 'a', '.', 'e', 'x', 'a', 'm', 'p',
					    0, 0x00, 0x05, 'b', '.', 'c', 'o', 'm'};
	static const uint8_t type1[] = {0x00, 0x08, 1, 0x00, 0x05, 'a', '.', 'c', 'o', 'm'};
	static const uint8_t list_short[] = {0x00, 0x07, 0, 0x00, 0x05, 'a', '.', 'c', 'o', 'm'};
	static const uint8_t list_long[] = {0x00, 0x09, 0, 0x00, 0x05, 'a', '.', 'c', 'o', 'm'};
	static const uint8_t name_short[] = {0x00, 0x08, 0, 0x00, 0x04, 'a', '.', 'c', 'o', 'm'};
	static const uint8_t empty_name[] = {0x00, 0x03, 0, 0x00, 0x00};
	static const uint8_t empty_list[] = {0x00, 0x00};

	hello_begin(&m, 0x0303, 0);
	ext_raw(&m, 0, two_names, sizeof(two_names));
	hello_end(&m);
	expect_msg("two host_name entries", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 0);
	ext_raw(&m, 0, type1, sizeof(type1));
	hello_end(&m);
	expect_msg("name_type other than host_name", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 0);
	ext_raw(&m, 0, list_short, sizeof(list_short));
	hello_end(&m);
	expect_msg("server name list shorter than the extension", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 0);
	ext_raw(&m, 0, list_long, sizeof(list_long));
	hello_end(&m);
	expect_msg("server name list longer than the extension", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 0);
	ext_raw(&m, 0, name_short, sizeof(name_short));
	hello_end(&m);
	expect_msg("host_name shorter than its entry", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 0);
	ext_raw(&m, 0, empty_name, sizeof(empty_name));
	hello_end(&m);
	expect_msg("empty host_name", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 0);
	ext_raw(&m, 0, empty_list, sizeof(empty_list));
	hello_end(&m);
	expect_msg("empty server name list", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 0);
	ext_raw(&m, 0, NULL, 0);
	hello_end(&m);
	expect_msg("empty server_name extension", &m, SBX_SNI_BAD, NULL);
}

static void test_alpn_ext(void)
{
	static struct msg m;
	static const uint8_t empty_proto[] = {0x00, 0x04, 2, 'h', '2', 0};
	static const uint8_t empty_list[] = {0x00, 0x00};
	static const uint8_t overrun[] = {0x00, 0x03, 2, 'h', '2', 0x00};
	static const uint8_t proto_long[] = {0x00, 0x03, 3, 'h', '2'};

	hello_begin(&m, 0x0303, 0);
	ext_raw(&m, 16, empty_proto, sizeof(empty_proto));
	hello_end(&m);
	expect_msg("ALPN with an empty protocol name", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 0);
	ext_raw(&m, 16, empty_list, sizeof(empty_list));
	hello_end(&m);
	expect_msg("ALPN with an empty list", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 0);
	ext_raw(&m, 16, overrun, sizeof(overrun));
	hello_end(&m);
	expect_msg("ALPN list shorter than the extension", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 0);
	ext_raw(&m, 16, proto_long, sizeof(proto_long));
	hello_end(&m);
	expect_msg("ALPN name longer than the list", &m, SBX_SNI_BAD, NULL);
}

static void test_extensions(void)
{
	static struct msg m;
	static const char *const alpn[] = {"h2", NULL};
	static const uint8_t v[] = {2, 0x03, 0x04};

	hello_begin(&m, 0x0303, 32);
	ext_sni(&m, "a.example");
	ext_sni(&m, "b.example");
	hello_end(&m);
	expect_msg("two server_name extensions", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 32);
	ext_raw(&m, 43, v, sizeof(v));
	ext_sni(&m, "a.example");
	ext_raw(&m, 43, v, sizeof(v));
	hello_end(&m);
	expect_msg("duplicate supported_versions", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 32);
	ext_alpn(&m, alpn);
	ext_alpn(&m, alpn);
	hello_end(&m);
	expect_msg("duplicate ALPN", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 32);
	ext_raw(&m, 0xfe0d, v, sizeof(v));
	ext_raw(&m, 0xffff, NULL, 0);
	ext_sni(&m, "a.example");
	hello_end(&m);
	expect_msg("unknown extension types", &m, SBX_SNI_OK, "a.example");

	/* Lengths that do not add up. */
	hello_basic(&m, "example.com");
	set16(&m, m.ext_at, m.n - m.ext_at - 3);
	expect_msg("extensions length one short", &m, SBX_SNI_BAD, NULL);
	hello_basic(&m, "example.com");
	set16(&m, m.ext_at, m.n - m.ext_at - 1);
	expect_msg("extensions length one long", &m, SBX_SNI_BAD, NULL);
	hello_basic(&m, "example.com");
	set16(&m, m.ext_at + 4, 0x1000); /* the first extension's (server_name) length */
	expect_msg("extension longer than the block", &m, SBX_SNI_BAD, NULL);
	hello_basic(&m, "example.com");
	set16(&m, m.ext_at + 4, 15);
	expect_msg("server_name extension one short", &m, SBX_SNI_BAD, NULL);
	hello_basic(&m, "example.com");
	put8(&m, 0);
	m.b[1] = 0;
	set16(&m, 2, m.n - 4);
	expect_msg("a byte after the extensions", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 0);
	m.n = m.ext_at;
	put8(&m, 0);
	m.b[1] = 0;
	set16(&m, 2, m.n - 4);
	expect_msg("one byte where the extensions length goes", &m, SBX_SNI_BAD, NULL);
}

static void test_body_fields(void)
{
	static struct msg m;
	static const size_t sid_at = 4 + 2 + 32;

	hello_basic(&m, "example.com");
	set16(&m, 4, 0x0300);
	expect_msg("legacy_version SSL 3.0", &m, SBX_SNI_BAD, NULL);
	hello_basic(&m, "example.com");
	set16(&m, 4, 0x0305);
	expect_msg("legacy_version 0x0305", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 33);
	hello_end(&m);
	expect_msg("33-byte session id", &m, SBX_SNI_BAD, NULL);
	/* Five bytes of cipher suites, the rest consistent. */
	hello_begin(&m, 0x0303, 0);
	set16(&m, sid_at + 1, 5);
	memmove(m.b + sid_at + 8, m.b + sid_at + 9, m.n - sid_at - 9);
	m.n--;
	m.ext_at--;
	hello_end(&m);
	expect_msg("odd cipher suites length", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 0);
	set16(&m, sid_at + 1, 0);
	hello_end(&m);
	expect_msg("no cipher suites", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 0);
	set16(&m, sid_at + 1, 0x2000);
	hello_end(&m);
	expect_msg("cipher suites longer than the hello", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 0);
	m.b[sid_at + 1 + 2 + 6] = 0;
	hello_end(&m);
	expect_msg("no compression methods", &m, SBX_SNI_BAD, NULL);
	hello_begin(&m, 0x0303, 0);
	m.b[sid_at + 1 + 2 + 6 + 1] = 1;
	hello_end(&m);
	expect_msg("compression without null", &m, SBX_SNI_BAD, NULL);
}

static void test_handshake_and_records(void)
{
	static struct msg m;
	static uint8_t buf[REC_CAP];
	size_t n;
	struct sbx_sni s;

	expect("empty input", (const uint8_t *)"", 0, SBX_SNI_NEED_MORE, NULL);
	expect("HTTP request", (const uint8_t *)"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, SBX_SNI_NOT_TLS, NULL);
	expect("SSH banner", (const uint8_t *)"SSH-2.0-OpenSSH_9.2\r\n", 21, SBX_SNI_NOT_TLS, NULL);
	expect("SSLv2-compatible hello", (const uint8_t *)"\x80\x2e\x01\x03\x01", 5, SBX_SNI_NOT_TLS, NULL);
	expect("application data record", (const uint8_t *)"\x17\x03\x03\x00\x05hello", 10, SBX_SNI_NOT_TLS, NULL);
	expect("major version 2", (const uint8_t *)"\x16\x02\x00\x00\x05", 5, SBX_SNI_NOT_TLS, NULL);
	expect("SSL 3.0 record", (const uint8_t *)"\x16\x03\x00\x00\x05", 5, SBX_SNI_BAD, NULL);
	expect("record version 0x0305", (const uint8_t *)"\x16\x03\x05", 3, SBX_SNI_BAD, NULL);
	expect("empty record", (const uint8_t *)"\x16\x03\x01\x00\x00\x01", 6, SBX_SNI_BAD, NULL);
	expect("record over 2^14+256 (first length byte)", (const uint8_t *)"\x16\x03\x01\x42", 4, SBX_SNI_BAD, NULL);
	expect("record of 2^14+257 bytes", (const uint8_t *)"\x16\x03\x01\x41\x01\x01", 6, SBX_SNI_BAD, NULL);
	expect("ServerHello", (const uint8_t *)"\x16\x03\x03\x00\x30\x02\x00\x00\x2c\x03\x03", 11, SBX_SNI_BAD, NULL);
	expect("handshake length of 2^16 or more", (const uint8_t *)"\x16\x03\x01\x00\x30\x01\x01", 7, SBX_SNI_BAD, NULL);
	expect("handshake length 16385", (const uint8_t *)"\x16\x03\x01\x00\x30\x01\x00\x40\x01", 9, SBX_SNI_BAD, NULL);
	expect("handshake length byte 2 already over", (const uint8_t *)"\x16\x03\x01\x00\x30\x01\x00\x41", 8,
	       SBX_SNI_BAD, NULL);
	expect("handshake length 0", (const uint8_t *)"\x16\x03\x01\x00\x04\x01\x00\x00\x00", 9, SBX_SNI_BAD, NULL);

	hello_basic(&m, "example.com");
	/* A hello longer than its record, with nothing after: more records may come. */
	n = wrap(m.b, m.n, buf);
	buf[3] = 0;
	buf[4] = 50;
	is_int(parse(buf, 55, &s), SBX_SNI_NEED_MORE, "hello continues past its record: NEED_MORE");
	memcpy(buf + 55, "\x15\x03\x01\x00\x02\x02\x28", 7);
	expect("alert record in the middle of the hello", buf, 62, SBX_SNI_BAD, NULL);
	memcpy(buf + 55, "\x16\x03\x03\x00\x02", 5);
	expect("second record with another version", buf, 60, SBX_SNI_BAD, NULL);

	/* A record reaching past the end of the hello. */
	n = wrap(m.b, m.n, buf);
	buf[n] = 0x01;
	buf[3] = (uint8_t)((n - 4) >> 8);
	buf[4] = (uint8_t)(n - 4);
	expect("handshake bytes after the hello in its record", buf, n + 1, SBX_SNI_BAD, NULL);
	{
		size_t sizes[] = {20, 0};

		n = wrap_sizes(m.b, m.n, sizes, 0x0301, buf);
		buf[3 + 25] = (uint8_t)((n - 25 - 5 + 10) >> 8);
		buf[4 + 25] = (uint8_t)(n - 25 - 5 + 10);
		expect("second record longer than the rest of the hello", buf, n, SBX_SNI_BAD, NULL);
	}

	/* The handshake length against what the records and the hello's own lengths say. */
	n = wrap(m.b, m.n, buf);
	is_int(parse(buf, n - 1, &s), SBX_SNI_NEED_MORE, "hello missing its last byte: NEED_MORE");
	m.b[3]++;
	n = wrap(m.b, m.n, buf);
	is_int(parse(buf, n, &s), SBX_SNI_BAD, "handshake length one more than the extensions fill: BAD");
	m.b[3] -= 2;
	n = wrap(m.b, m.n, buf);
	is_int(parse(buf, n, &s), SBX_SNI_BAD, "handshake length one less than the record: BAD");
}

static void test_limits(void)
{
	static struct msg m;
	static uint8_t buf[REC_CAP], pad[SBX_TLS_MAX_HELLO];
	size_t sizes[SBX_TLS_MAX_RECORDS + 1], n;
	struct sbx_sni s;

	/* The largest hello: body of exactly SBX_TLS_MAX_HELLO bytes, padded (extension 21). */
	hello_basic(&m, "big.example");
	memset(pad, 0, sizeof(pad));
	/* Body so far (m.n - 4) plus the padding extension's header (4): m.n bytes. */
	ext_raw(&m, 21, pad, SBX_TLS_MAX_HELLO - m.n);
	hello_end(&m);
	is_int(m.n - 4, SBX_TLS_MAX_HELLO, "padded hello body is SBX_TLS_MAX_HELLO bytes");
	n = wrap(m.b, m.n, buf);
	is_int(parse(buf, n, &s), SBX_SNI_OK, "hello of SBX_TLS_MAX_HELLO bytes in one record");
	is_str(s.host, "big.example", "its host");
	hello_basic(&m, "big.example");
	ext_raw(&m, 21, pad, SBX_TLS_MAX_HELLO - m.n + 1);
	hello_end(&m);
	n = wrap(m.b, m.n, buf);
	is_int(parse(buf, n, &s), SBX_SNI_BAD, "one byte more: BAD");
	is_int(parse(buf, 9, &s), SBX_SNI_BAD, "... seen from the handshake header alone");

	/* Split over the most records allowed, and one more. */
	hello_basic(&m, "example.com");
	for (size_t i = 0; i < SBX_TLS_MAX_RECORDS - 1; i++)
		sizes[i] = 1;
	sizes[SBX_TLS_MAX_RECORDS - 1] = 0;
	n = wrap_sizes(m.b, m.n, sizes, 0x0301, buf);
	is_int(parse(buf, n, &s), SBX_SNI_OK, "hello in %d records", SBX_TLS_MAX_RECORDS);
	is_int(s.hello_len, n, "hello_len spans them all");
	ok(n <= SBX_TLS_MAX_INPUT, "within SBX_TLS_MAX_INPUT");
	sizes[SBX_TLS_MAX_RECORDS - 1] = 1;
	sizes[SBX_TLS_MAX_RECORDS] = 0;
	n = wrap_sizes(m.b, m.n, sizes, 0x0301, buf);
	expect("hello in one record too many", buf, n, SBX_SNI_BAD, NULL);
	is_int(parse(buf, SBX_TLS_MAX_RECORDS * 6, &s), SBX_SNI_BAD,
	       "BAD as soon as the last allowed record ends without the hello");
	is_int(parse(buf, SBX_TLS_MAX_RECORDS * 6 - 1, &s), SBX_SNI_NEED_MORE, "NEED_MORE one byte before");
}

int main(void)
{
	test_captured();
	test_builder_hellos();
	test_names();
	test_server_name_ext();
	test_alpn_ext();
	test_extensions();
	test_body_fields();
	test_handshake_and_records();
	test_limits();
	return done_testing();
}
