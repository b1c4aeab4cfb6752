/* test_mitm.c - the interception CA (src/daemon/tls_mitm.c): a CA created in a temp directory
 * with the right files and modes and found again on reopen; leaves for names and addresses that
 * verify against a store holding ca.pem alone (for their own name only, strict RFC 5280 checks,
 * TLS server purpose); the leaf cache (hits, LRU eviction, re-minting near expiry); host names
 * refused before they reach a certificate; CA files that are tampered with refused and left as
 * they were; real handshakes over socketpairs (name and IP, ALPN fallback to http/1.1, the
 * TLS 1.2 floor, no session tickets). Mint, SSL set-up and handshake times are printed as
 * diagnostics, never asserted. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/tls_mitm.h"
#include "tap.h"
#include "util.h"

#define DAY 86400L

static char tmp_root[64];

static void path_in(char *out, size_t n, const char *dir, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static int mode_of(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static char *slurp(const char *path, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	sbx_err err = SBX_ERR_INIT;

	if (sbx_read_file(path, 1 << 20, &buf, &n, &err) < 0)
		return NULL;
	if (len)
		*len = n;
	return buf;
}

static int spew(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	int rc;

	if (fd < 0)
		return -1;
	rc = fchmod(fd, mode) == 0 && sbx_write_all(fd, data, len) == 0 ? 0 : -1;
	close(fd);
	return rc;
}

static bool same_file(const char *path, const char *want, size_t want_len)
{
	size_t n = 0;
	char *got = slurp(path, &n);
	bool same = got && n == want_len && memcmp(got, want, n) == 0;

	free(got);
	return same;
}

static X509 *x509_from_pem(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return x;
}

static void fingerprint(X509 *x, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	out[0] = '\0';
	if (!x || X509_digest(x, EVP_sha256(), md, &n) != 1)
		return;
	for (unsigned int i = 0; i < n && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

static double elapsed_us(uint64_t t0)
{
	return (double)(sbx_monotonic_ns() - t0) / 1000.0;
}

/* Verifies leaf against a store holding ca_path alone, for host (a name, or an address when
 * is_ip), as a TLS server certificate with OpenSSL's strict RFC 5280 checks. */
static int verify_leaf(const char *ca_path, X509 *leaf, const char *host, bool is_ip)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_VERIFY_PARAM *param;
	int rc = -1;

	if (!store || !ctx || X509_STORE_load_file(store, ca_path) != 1 || X509_STORE_CTX_init(ctx, store, leaf, NULL) != 1)
		goto out;
	param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
	X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
	if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1 : X509_VERIFY_PARAM_set1_host(param, host, 0) != 1)
		goto out;
	rc = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	if (rc == X509_V_OK)
		rc = 0;
	else if (rc == 0)
		rc = -2;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

static bool has_crit_ext(X509 *x, int nid, int *critical)
{
	int i = X509_get_ext_by_NID(x, nid, -1);

	if (i < 0)
		return false;
	*critical = X509_EXTENSION_get_critical(X509_get_ext(x, i));
	return true;
}

static long seconds_from_now(const ASN1_TIME *t)
{
	int days = 0, secs = 0;

	if (ASN1_TIME_diff(&days, &secs, NULL, t) != 1)
		return -999999999L;
	return days * DAY + secs;
}

/* ---- the CA ---- */

static void test_create_and_reopen(void)
{
	char dir[256], key[300], cert[300], fp1[65], fp2[65];
	struct sbx_mitm *m = NULL;
	sbx_err err = SBX_ERR_INIT;
	size_t klen = 0, clen = 0;
	char *kdata, *cdata;
	X509 *ca;
	int crit = -1, n;

	path_in(dir, sizeof(dir), tmp_root, "state/ca");
	path_in(key, sizeof(key), dir, "ca.key");
	path_in(cert, sizeof(cert), dir, "ca.pem");
	ok(sbx_mitm_open(dir, &m, &err) == 0, "a CA is created in a missing directory (%s)", err.msg);
	if (!m)
		return;
	is_int(mode_of(dir), 0700, "the CA directory is 0700");
	is_int(mode_of(key), 0600, "ca.key is 0600");
	is_int(mode_of(cert), 0644, "ca.pem is 0644");
	is_int(count_entries(dir), 2, "the directory holds ca.key and ca.pem and no temp file");
	is_str(sbx_mitm_ca_path(m), cert, "the CA path is dir/ca.pem");
	cdata = slurp(cert, &clen);
	kdata = slurp(key, &klen);
	ok(cdata && !strcmp(cdata, sbx_mitm_ca_pem(m)), "the CA PEM is the content of ca.pem");
	ok(kdata && strstr(kdata, "-----BEGIN PRIVATE KEY-----"), "ca.key is an unencrypted PKCS#8 PEM key");

	ca = x509_from_pem(sbx_mitm_ca_pem(m));
	ok(ca != NULL, "the CA PEM parses");
	if (ca) {
		EVP_PKEY *pub = X509_get0_pubkey(ca);
		char group[64] = "", cn[128] = "";
		const ASN1_INTEGER *serial = X509_get0_serialNumber(ca);
		BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
		long left = seconds_from_now(X509_get0_notAfter(ca));

		is_int(X509_check_ca(ca), 1, "ca.pem is a CA (basicConstraints CA:TRUE)");
		ok(has_crit_ext(ca, NID_basic_constraints, &crit) && crit == 1, "basicConstraints is critical");
		is_int(X509_get_pathlen(ca), 0, "pathlen:0");
		ok(has_crit_ext(ca, NID_key_usage, &crit) && crit == 1, "keyUsage is critical");
		is_int(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN, "keyUsage is keyCertSign, cRLSign");
		ok(X509_get0_subject_key_id(ca) != NULL, "the CA has a subject key identifier");
		ok(pub && EVP_PKEY_is_a(pub, "EC") &&
			   EVP_PKEY_get_utf8_string_param(pub, "group", group, sizeof(group), NULL) == 1 &&
			   !strcmp(group, "prime256v1"),
		   "the CA key is EC P-256 (%s)", group);
		is_int(X509_get_signature_nid(ca), NID_ecdsa_with_SHA256, "signed with ECDSA-SHA256");
		n = X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn, sizeof(cn));
		ok(n > 0 && n <= 64 && sbx_str_has_prefix(cn, "sbx proxy CA ") && strchr(cn, '@'),
		   "the CA is named \"%s\"", cn);
		ok(X509_NAME_cmp(X509_get_subject_name(ca), X509_get_issuer_name(ca)) == 0, "the CA is self-issued");
		ok(left > 3650 * DAY && left < 3655 * DAY, "the CA is valid for ten years (%ld days left)", left / DAY);
		ok(seconds_from_now(X509_get0_notBefore(ca)) <= -3000, "the CA's validity starts before now");
		ok(bn && BN_num_bits(bn) > 64 && BN_num_bits(bn) <= 128, "the serial is random and 128 bits at most (%d bits)",
		   bn ? BN_num_bits(bn) : 0);
		BN_free(bn);
	}
	fingerprint(ca, fp1);
	X509_free(ca);
	sbx_mitm_free(m);
	m = NULL;

	ok(sbx_mitm_open(dir, &m, &err) == 0, "the CA reopens (%s)", err.msg);
	if (m) {
		ca = x509_from_pem(sbx_mitm_ca_pem(m));
		fingerprint(ca, fp2);
		X509_free(ca);
		is_str(fp2, fp1, "reopening finds the same CA");
		ok(kdata && same_file(key, kdata, klen) && cdata && same_file(cert, cdata, clen),
		   "reopening leaves both files as they were");
		sbx_mitm_free(m);
	}
	free(kdata);
	free(cdata);
}

/* ---- leaves ---- */

struct leaf_case {
	const char *host;     /* as asked for */
	const char *verify;   /* the name or address a client checks */
	bool is_ip;
	const char *other;    /* a name or address (as is_ip says) it must not pass for */
};

static void test_leaves(struct sbx_mitm *m, struct sbx_mitm *other_ca)
{
	static char long_name[254];
	static const struct leaf_case cases[] = {
		{"example.com", "example.com", false, "www.example.com"},
		{"www.example.com", "www.example.com", false, "example.com"},
		{"api.github.com", "api.github.com", false, "github.com"},
		{"localhost", "localhost", false, "localhost.localdomain"},
		{"Mixed.Case.EXAMPLE", "mixed.case.example", false, "case.example"},
		{"under_score.example", "under_score.example", false, "underscore.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", false, "bucher.example"},
		{"127.0.0.1", "127.0.0.1", true, "127.0.0.2"},
		{"10.1.2.3", "10.1.2.3", true, "10.1.2.4"},
		{"::1", "::1", true, "::2"},
		{"2001:DB8::5", "2001:db8::5", true, "2001:db8::6"},
		{"::ffff:192.0.2.1", "::ffff:192.0.2.1", true, "::ffff:192.0.2.2"},
		{long_name, long_name, false, "example.com"},
	};
	sbx_err err = SBX_ERR_INIT;
	X509 *first = NULL;
	BIGNUM *first_serial = NULL;

	/* 253 characters: four labels of 62 and one of 1, with dots. */
	memset(long_name, 'a', 253);
	long_name[62] = long_name[125] = long_name[188] = long_name[251] = '.';
	long_name[253] = '\0';

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct leaf_case *c = &cases[i];
		X509 *leaf = sbx_mitm_leaf(m, c->host, &err);
		char shown[48];
		int crit = -1, rc;

		snprintf(shown, sizeof(shown), "%.40s%s", c->host, strlen(c->host) > 40 ? "..." : "");
		ok(leaf != NULL, "a leaf for %s (%s)", shown, leaf ? "" : err.msg);
		if (!leaf)
			continue;
		rc = verify_leaf(sbx_mitm_ca_path(m), leaf, c->verify, c->is_ip);
		ok(rc == 0, "the leaf for %s verifies against ca.pem alone (%s)", shown,
		   rc > 0 ? X509_verify_cert_error_string(rc) : rc ? "setup failed" : "ok");
		rc = verify_leaf(sbx_mitm_ca_path(m), leaf, c->other, c->is_ip);
		ok(rc == X509_V_ERR_HOSTNAME_MISMATCH || rc == X509_V_ERR_IP_ADDRESS_MISMATCH,
		   "... and not for %s (%s)", c->other, rc > 0 ? X509_verify_cert_error_string(rc) : "passed");
		if (other_ca) {
			rc = verify_leaf(sbx_mitm_ca_path(other_ca), leaf, c->verify, c->is_ip);
			is_int(rc, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, "... nor against another install's CA");
		}
		if (i == 0) {
			long nb = seconds_from_now(X509_get0_notBefore(leaf));
			long na = seconds_from_now(X509_get0_notAfter(leaf));
			const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(leaf);
			X509 *ca = x509_from_pem(sbx_mitm_ca_pem(m));
			GENERAL_NAMES *san = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
			EVP_PKEY *pub = X509_get0_pubkey(leaf);

			is_int(X509_check_ca(leaf), 0, "a leaf is not a CA");
			ok(has_crit_ext(leaf, NID_basic_constraints, &crit), "a leaf has basicConstraints (CA:FALSE)");
			is_int(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE, "keyUsage is digitalSignature alone");
			is_int(X509_get_extended_key_usage(leaf), XKU_SSL_SERVER, "extendedKeyUsage is serverAuth alone");
			ok(san && sk_GENERAL_NAME_num(san) == 1, "one subject alternative name");
			ok(akid && ca && X509_get0_subject_key_id(ca) &&
				   ASN1_OCTET_STRING_cmp(akid, X509_get0_subject_key_id(ca)) == 0,
			   "the authority key identifier is the CA's subject key identifier");
			ok(nb <= -3500 && nb >= -3700, "valid from an hour ago (%ld s)", nb);
			ok(na >= 30 * DAY - 60 && na <= 30 * DAY, "valid for 30 days (%ld s left)", na);
			ok(pub && EVP_PKEY_is_a(pub, "EC") && EVP_PKEY_get_bits(pub) == 256, "the leaf key is EC P-256");
			ok(ca && EVP_PKEY_eq(pub, X509_get0_pubkey(ca)) != 1, "the leaf key is not the CA's");
			GENERAL_NAMES_free(san);
			X509_free(ca);
			first = leaf;
			X509_up_ref(first);
			first_serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
		} else if (i == 1 && first_serial) {
			BIGNUM *s = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
			ok(s && BN_cmp(s, first_serial) != 0, "two leaves have different serials");
			ok(X509_cmp(leaf, first) != 0 && EVP_PKEY_eq(X509_get0_pubkey(leaf), X509_get0_pubkey(first)) != 1,
			   "two leaves have different keys");
			BN_free(s);
		}
		if (c->host == long_name) {
			char cn[80];
			ok(X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn)) < 0 &&
				   has_crit_ext(leaf, NID_subject_alt_name, &crit) && crit == 1,
			   "a name too long for a common name is in a critical SAN alone");
		}
		X509_free(leaf);
	}
	ok(ERR_peek_error() == 0, "minting leaves the OpenSSL error queue empty");
	X509_free(first);
	BN_free(first_serial);
}

static void test_cache(struct sbx_mitm *m)
{
	sbx_err err = SBX_ERR_INIT;
	unsigned long minted0, hits0, minted, hits;
	X509 *a, *a2, *b, *c, *d, *x;

	sbx_mitm_stats(m, &minted0, &hits0);
	a = sbx_mitm_leaf(m, "cache-a.example", &err);
	a2 = sbx_mitm_leaf(m, "cache-a.example", &err);
	x = sbx_mitm_leaf(m, "CACHE-A.Example", &err);
	sbx_mitm_stats(m, &minted, &hits);
	ok(a && a == a2 && a == x, "a cache hit returns the same certificate, whatever the case of the name");
	is_int(minted - minted0, 1, "one mint");
	is_int(hits - hits0, 2, "two hits");
	X509_free(a2);
	X509_free(x);
	X509_free(a);

	a2 = sbx_mitm_leaf(m, "::1", &err);
	x = sbx_mitm_leaf(m, "0:0:0::1", &err);
	ok(a2 && a2 == x, "an IPv6 address is cached under its canonical form");
	X509_free(a2);
	X509_free(x);


	/* LRU with room for 3: p, q, r in; touching p keeps it, so s evicts q. */
	sbx_mitm_test_set_cache_cap(m, 3);
	a = sbx_mitm_leaf(m, "lru-p.example", &err);
	b = sbx_mitm_leaf(m, "lru-q.example", &err);
	c = sbx_mitm_leaf(m, "lru-r.example", &err);
	X509_free(sbx_mitm_leaf(m, "lru-p.example", &err));
	d = sbx_mitm_leaf(m, "lru-s.example", &err);
	sbx_mitm_stats(m, &minted0, &hits0);
	x = sbx_mitm_leaf(m, "lru-p.example", &err);
	ok(a && x == a, "the entry used recently survives the eviction");
	X509_free(x);
	x = sbx_mitm_leaf(m, "lru-r.example", &err);
	ok(c && x == c, "so does the one after it");
	X509_free(x);
	x = sbx_mitm_leaf(m, "lru-s.example", &err);
	ok(d && x == d, "and the newest");
	X509_free(x);
	sbx_mitm_stats(m, &minted, &hits);
	ok(minted == minted0 && hits - hits0 == 3, "three hits, no mint");
	x = sbx_mitm_leaf(m, "lru-q.example", &err);
	sbx_mitm_stats(m, &minted, &hits);
	ok(x && x != b && minted == minted0 + 1, "the least recently used entry was evicted, and is minted again");
	X509_free(x);
	/* Order now q, s, r, p: bringing q back evicted p. */
	x = sbx_mitm_leaf(m, "lru-p.example", &err);
	ok(x && x != a, "the cap holds: bringing q back evicted p, then the least recently used");
	X509_free(x);
	X509_free(a);
	X509_free(b);
	X509_free(c);
	X509_free(d);

	sbx_mitm_test_set_cache_cap(m, 1);
	sbx_mitm_stats(m, &minted0, &hits0);
	X509_free(sbx_mitm_leaf(m, "one-a.example", &err));
	X509_free(sbx_mitm_leaf(m, "one-a.example", &err));
	X509_free(sbx_mitm_leaf(m, "one-b.example", &err));
	X509_free(sbx_mitm_leaf(m, "one-a.example", &err));
	sbx_mitm_stats(m, &minted, &hits);
	ok(minted - minted0 == 3 && hits - hits0 == 1, "a cache of one keeps one");

	/* Many names through a small cache: eviction under churn, same-bucket chains included. */
	sbx_mitm_test_set_cache_cap(m, 7);
	for (int i = 0; i < 300; i++) {
		char name[64];
		snprintf(name, sizeof(name), "churn-%d.example", i % 23);
		X509 *l = sbx_mitm_leaf(m, name, &err);
		if (!l) {
			ok(0, "churn: %s", err.msg);
			break;
		}
		X509_free(l);
	}
	sbx_mitm_test_set_cache_cap(m, SBX_MITM_CACHE);

	/* A leaf is minted again once less than a day of its validity is left. */
	x = sbx_mitm_leaf(m, "renew.example", &err);
	sbx_mitm_stats(m, &minted0, NULL);
	sbx_mitm_test_shift_clock(m, 28 * DAY);
	a = sbx_mitm_leaf(m, "renew.example", &err);
	sbx_mitm_stats(m, &minted, NULL);
	ok(a == x && minted == minted0, "a leaf with two days left is still served from the cache");
	X509_free(a);
	sbx_mitm_test_shift_clock(m, 29 * DAY + 3600);
	a = sbx_mitm_leaf(m, "renew.example", &err);
	sbx_mitm_stats(m, &minted, NULL);
	ok(a && a != x && minted == minted0 + 1, "a leaf with 23 hours left is minted again");
	ok(a && seconds_from_now(X509_get0_notAfter(a)) > 58 * DAY, "the new leaf is valid 30 days from the (shifted) clock");
	X509_free(a);
	X509_free(x);
	sbx_mitm_test_shift_clock(m, 0);
}

static void test_invalid_names(struct sbx_mitm *m)
{
	static char too_long[301], long_label[70], just_over[255];
	const char *bad[] = {
		"", "a..b", ".a.b", "*.x.com", "x.*.com", "x.com.", too_long, just_over, long_label, "1.2.3", "123",
		"1.2.3.4.5", "0x7f.0.0.1", "a b.com", " x.com", "x.com ", "a\tb", "x.com\n", "a,DNS:evil.com", "a/b",
		"a:b", "a@b.com", "[::1]", "fe80::1%eth0", "caf\xc3\xa9.example", "\xff.example", "a\\b", "x.com\r\n",
		"1.2.3.256", "::1::2",
	};
	sbx_err err = SBX_ERR_INIT;
	unsigned long minted0, minted;

	memset(too_long, 'a', 300);
	for (int i = 50; i < 300; i += 50)
		too_long[i] = '.';
	memset(just_over, 'b', 254);
	just_over[63] = just_over[127] = just_over[191] = '.';
	memset(long_label, 'c', 64);
	memcpy(long_label + 64, ".com", 5);

	sbx_mitm_stats(m, &minted0, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char shown[64];
		size_t j = 0;
		X509 *x;
		for (const char *p = bad[i]; *p && j < 40; p++)
			shown[j++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
		shown[j] = '\0';
		sbx_err_clear(&err);
		x = sbx_mitm_leaf(m, bad[i], &err);
		ok(!x && err.code == SBX_E_INVALID && err.msg[0], "refused: \"%s\" (%s)", shown, err.msg);
		X509_free(x);
	}
	ok(!strchr(err.msg, '\n') && !strchr(err.msg, '\r'), "messages never carry the name's control characters");
	sbx_err_clear(&err);
	ok(sbx_mitm_server_ssl(m, -1, "*.example.com", &err) == NULL && err.code == SBX_E_INVALID,
	   "the server side refuses the same names (%s)", err.msg);
	sbx_err_clear(&err);
	ok(sbx_mitm_leaf(m, NULL, &err) == NULL && err.code == SBX_E_INVALID, "refused: NULL");
	sbx_mitm_stats(m, &minted, NULL);
	is_int(minted, minted0, "nothing was minted for a refused name");
	ok(ERR_peek_error() == 0, "refusals leave the OpenSSL error queue empty");

	{
		static char ok63[80], ok253[254];
		X509 *x;
		memset(ok63, 'd', 63);
		memcpy(ok63 + 63, ".com", 5);
		memset(ok253, 'e', 253);
		ok253[63] = ok253[127] = ok253[191] = '.';
		x = sbx_mitm_leaf(m, ok63, &err);
		ok(x != NULL, "a 63-character label is accepted");
		X509_free(x);
		x = sbx_mitm_leaf(m, ok253, &err);
		ok(x != NULL, "a 253-character name is accepted");
		X509_free(x);
		x = sbx_mitm_leaf(m, "1.2.3.x", &err);
		ok(x != NULL, "a name whose last label is not all digits is a name");
		X509_free(x);
	}
}

/* ---- tampered CA files ---- */

/* A fresh CA in tmp_root/name; returns the directory in dir. */
static int fresh_ca(const char *name, char *dir, size_t n)
{
	struct sbx_mitm *m = NULL;
	sbx_err err = SBX_ERR_INIT;

	path_in(dir, n, tmp_root, name);
	if (sbx_mitm_open(dir, &m, &err) < 0) {
		diag("fresh CA %s: %s", name, err.msg);
		return -1;
	}
	sbx_mitm_free(m);
	return 0;
}

static char *pem_of_key(EVP_PKEY *k, const EVP_CIPHER *enc, const char *pass)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (b && PEM_write_bio_PrivateKey(b, k, enc, (unsigned char *)pass, pass ? (int)strlen(pass) : 0, NULL, NULL) == 1 &&
	    (n = BIO_get_mem_data(b, &data)) > 0)
		out = strndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

/* Opens dir, expecting a refusal whose message holds each of the given fragments, and both files
 * unchanged. */
static void expect_refused(const char *dir, const char *what, const char *frag1, const char *frag2)
{
	char key[300], cert[300];
	size_t klen = 0, clen = 0;
	char *kdata, *cdata;
	struct sbx_mitm *m = NULL;
	sbx_err err = SBX_ERR_INIT;
	int kmode, cmode, dmode;
	int rc;

	path_in(key, sizeof(key), dir, "ca.key");
	path_in(cert, sizeof(cert), dir, "ca.pem");
	kdata = slurp(key, &klen);
	cdata = slurp(cert, &clen);
	kmode = mode_of(key);
	cmode = mode_of(cert);
	dmode = mode_of(dir);
	rc = sbx_mitm_open(dir, &m, &err);
	ok(rc < 0 && !m, "%s: refused (%s)", what, err.msg);
	ok(strstr(err.msg, frag1) && (!frag2 || strstr(err.msg, frag2)), "... the message says \"%s\"%s%s", frag1,
	   frag2 ? " and names " : "", frag2 ? frag2 : "");
	ok((!kdata || same_file(key, kdata, klen)) && (!cdata || same_file(cert, cdata, clen)) && mode_of(key) == kmode &&
		   mode_of(cert) == cmode && mode_of(dir) == dmode,
	   "... and nothing was created, replaced or changed");
	ok(ERR_peek_error() == 0, "... and the OpenSSL error queue is empty");
	sbx_mitm_free(m);
	free(kdata);
	free(cdata);
}

/* A self-signed certificate for key that is not a CA (a v3 leaf with digitalSignature only). */
static char *non_ca_cert(EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	BIO *b = BIO_new(BIO_s_mem());
	X509_EXTENSION *ext = NULL;
	X509V3_CTX v3;
	char *data, *out = NULL;
	long n;

	if (x && name && b && X509_set_version(x, X509_VERSION_3) == 1 &&
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 12345) == 1 && X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
	    X509_gmtime_adj(X509_getm_notAfter(x), 365 * DAY) &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"not a ca", -1, -1, 0) == 1 &&
	    X509_set_subject_name(x, name) == 1 && X509_set_issuer_name(x, name) == 1 && X509_set_pubkey(x, key) == 1) {
		X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage, "critical,digitalSignature");
		if (ext && X509_add_ext(x, ext, -1) == 1 && X509_sign(x, key, EVP_sha256()) > 0 && PEM_write_bio_X509(b, x) == 1 &&
		    (n = BIO_get_mem_data(b, &data)) > 0)
			out = strndup(data, (size_t)n);
	}
	X509_EXTENSION_free(ext);
	BIO_free(b);
	X509_NAME_free(name);
	X509_free(x);
	return out;
}

static EVP_PKEY *load_key(const char *path)
{
	char *data = slurp(path, NULL);
	BIO *b = data ? BIO_new_mem_buf(data, -1) : NULL;
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	free(data);
	return k;
}

static void test_tampered(void)
{
	char dir[256], key[300], cert[300];
	sbx_err err = SBX_ERR_INIT;
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	char *pem;
	size_t len;

	/* The key replaced by another key. */
	if (fresh_ca("t-otherkey", dir, sizeof(dir)) == 0) {
		path_in(key, sizeof(key), dir, "ca.key");
		pem = pem_of_key(other, NULL, NULL);
		ok(pem && spew(key, pem, strlen(pem), 0600) == 0, "ca.key replaced by another P-256 key");
		free(pem);
		expect_refused(dir, "a key that does not match", "does not belong to the certificate", dir);
	}
	/* The certificate truncated. */
	if (fresh_ca("t-truncated", dir, sizeof(dir)) == 0) {
		char *data;
		path_in(cert, sizeof(cert), dir, "ca.pem");
		data = slurp(cert, &len);
		ok(data && spew(cert, data, len / 2, 0644) == 0, "ca.pem cut in half");
		free(data);
		expect_refused(dir, "a truncated certificate", "is not a PEM certificate", cert);
	}
	/* The certificate emptied. */
	if (fresh_ca("t-empty", dir, sizeof(dir)) == 0) {
		path_in(cert, sizeof(cert), dir, "ca.pem");
		ok(spew(cert, "", 0, 0644) == 0, "ca.pem emptied");
		expect_refused(dir, "an empty certificate file", "is not a PEM certificate", cert);
	}
	/* The key garbled. */
	if (fresh_ca("t-garbled", dir, sizeof(dir)) == 0) {
		static const char junk[] = "-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n-----END PRIVATE KEY-----\n";
		path_in(key, sizeof(key), dir, "ca.key");
		ok(spew(key, junk, sizeof(junk) - 1, 0600) == 0, "ca.key garbled");
		expect_refused(dir, "a corrupt key", "is not a PEM private key", key);
	}
	/* The key open to others. */
	if (fresh_ca("t-mode", dir, sizeof(dir)) == 0) {
		char fix[400];
		path_in(key, sizeof(key), dir, "ca.key");
		ok(chmod(key, 0644) == 0, "ca.key made 0644");
		snprintf(fix, sizeof(fix), "chmod 600 %s", key);
		expect_refused(dir, "a key readable by others", fix, NULL);
		ok(chmod(key, 0640) == 0, "ca.key made 0640");
		expect_refused(dir, "a key readable by the group", fix, NULL);
		ok(chmod(key, 0700) == 0, "ca.key made 0700");
		expect_refused(dir, "a key with more than 0600", fix, "wider than 0600");
	}
	/* An encrypted key: refused without prompting for a pass phrase. */
	if (fresh_ca("t-encrypted", dir, sizeof(dir)) == 0) {
		EVP_PKEY *k;
		path_in(key, sizeof(key), dir, "ca.key");
		k = load_key(key);
		pem = k ? pem_of_key(k, EVP_aes_256_cbc(), "secret") : NULL;
		ok(pem && spew(key, pem, strlen(pem), 0600) == 0, "ca.key encrypted with a pass phrase");
		free(pem);
		EVP_PKEY_free(k);
		expect_refused(dir, "an encrypted key", "is encrypted", "openssl pkey");
	}
	/* A symlink in place of the key. */
	if (fresh_ca("t-symlink", dir, sizeof(dir)) == 0) {
		char moved[320];
		path_in(key, sizeof(key), dir, "ca.key");
		snprintf(moved, sizeof(moved), "%s/../t-symlink.key", dir);
		ok(rename(key, moved) == 0 && symlink(moved, key) == 0, "ca.key replaced by a symlink to itself");
		expect_refused(dir, "a symlinked key", "symbolic link", key);
	}
	/* A certificate that is not a CA, for the right key. */
	if (fresh_ca("t-notca", dir, sizeof(dir)) == 0) {
		EVP_PKEY *k;
		path_in(key, sizeof(key), dir, "ca.key");
		path_in(cert, sizeof(cert), dir, "ca.pem");
		k = load_key(key);
		pem = k ? non_ca_cert(k) : NULL;
		ok(pem && spew(cert, pem, strlen(pem), 0644) == 0, "ca.pem replaced by a non-CA certificate for the same key");
		free(pem);
		EVP_PKEY_free(k);
		expect_refused(dir, "a certificate that is not a CA", "is not a CA certificate", cert);
	}
	/* Half a CA: one of the files missing. */
	if (fresh_ca("t-nokey", dir, sizeof(dir)) == 0) {
		path_in(key, sizeof(key), dir, "ca.key");
		ok(unlink(key) == 0, "ca.key removed");
		expect_refused(dir, "a CA without its key", "is missing", key);
	}
	if (fresh_ca("t-nocert", dir, sizeof(dir)) == 0) {
		path_in(cert, sizeof(cert), dir, "ca.pem");
		ok(unlink(cert) == 0, "ca.pem removed");
		expect_refused(dir, "a CA without its certificate", "is missing", cert);
	}
	/* A directory in place of the certificate. */
	if (fresh_ca("t-dircert", dir, sizeof(dir)) == 0) {
		path_in(cert, sizeof(cert), dir, "ca.pem");
		ok(unlink(cert) == 0 && mkdir(cert, 0755) == 0, "ca.pem replaced by a directory");
		expect_refused(dir, "a directory for a certificate", "not a regular file", cert);
	}
	/* A CA directory others can write to. */
	if (fresh_ca("t-dirmode", dir, sizeof(dir)) == 0) {
		ok(chmod(dir, 0777) == 0, "the CA directory made 0777");
		expect_refused(dir, "a world-writable CA directory", "chmod 700", dir);
	}
	/* Validity, through the test hook. */
	path_in(dir, sizeof(dir), tmp_root, "t-expired");
	ok(sbx_mitm_test_create_ca(dir, -400 * DAY, -DAY, &err) == 0, "an expired CA made (%s)", err.msg);
	expect_refused(dir, "an expired CA", "expired on", "remove the directory");
	path_in(dir, sizeof(dir), tmp_root, "t-expiring");
	ok(sbx_mitm_test_create_ca(dir, -3600, 10 * DAY, &err) == 0, "a CA expiring in 10 days made (%s)", err.msg);
	expect_refused(dir, "a CA expiring within 30 days", "less than 30 days", "sandboxes pick it up when restarted");
	path_in(dir, sizeof(dir), tmp_root, "t-future");
	ok(sbx_mitm_test_create_ca(dir, 2 * DAY, 3650 * DAY, &err) == 0, "a CA valid only from the day after tomorrow made");
	expect_refused(dir, "a CA not valid yet", "not valid before", "clock");
	path_in(dir, sizeof(dir), tmp_root, "t-expiring");
	ok(sbx_mitm_test_create_ca(dir, -3600, 3650 * DAY, &err) < 0 && err.code == SBX_E_CONFLICT,
	   "creating a CA never replaces one (%s)", err.msg);
	{
		struct sbx_mitm *m = NULL;
		path_in(dir, sizeof(dir), tmp_root, "t-31days");
		ok(sbx_mitm_test_create_ca(dir, -3600, 31 * DAY, &err) == 0 && sbx_mitm_open(dir, &m, &err) == 0,
		   "a CA with 31 days left is accepted (%s)", err.msg);
		if (m) {
			X509 *leaf = sbx_mitm_leaf(m, "short.example", &err);
			X509 *ca = x509_from_pem(sbx_mitm_ca_pem(m));
			ok(leaf && ca && ASN1_TIME_compare(X509_get0_notAfter(leaf), X509_get0_notAfter(ca)) <= 0,
			   "its leaves do not outlive it");
			sbx_mitm_test_shift_clock(m, 30 * DAY + 3600);
			X509_free(sbx_mitm_leaf(m, "later.example", &err));
			ok(strstr(err.msg, "expires on"), "minting refuses once the CA has less than a day left (%s)", err.msg);
			X509_free(leaf);
			X509_free(ca);
			sbx_mitm_free(m);
		}
	}
	EVP_PKEY_free(other);
}

/* ---- handshakes ---- */

struct hs_result {
	bool client_ok, server_ok;
	long verify;
	char alpn[32];
	int version;
	double us;
};

/* Runs both sides of a handshake over non-blocking sockets until both are done or one fails. */
static void handshake(SSL *client, SSL *server, int cfd, int sfd, struct hs_result *r)
{
	bool cdone = false, sdone = false, cfail = false, sfail = false;
	uint64_t t0 = sbx_monotonic_ns();

	for (int rounds = 0; rounds < 1000 && !(cdone && sdone) && !cfail && !sfail; rounds++) {
		struct pollfd p[2] = {{.fd = cfd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
		int rc;
		if (!cdone) {
			rc = SSL_do_handshake(client);
			if (rc == 1)
				cdone = true;
			else if (SSL_get_error(client, rc) != SSL_ERROR_WANT_READ && SSL_get_error(client, rc) != SSL_ERROR_WANT_WRITE)
				cfail = true;
		}
		if (!sdone) {
			rc = SSL_do_handshake(server);
			if (rc == 1)
				sdone = true;
			else if (SSL_get_error(server, rc) != SSL_ERROR_WANT_READ && SSL_get_error(server, rc) != SSL_ERROR_WANT_WRITE)
				sfail = true;
		}
		if (!(cdone && sdone) && !cfail && !sfail && poll(p, 2, 2000) == 0)
			break;
	}
	r->us = elapsed_us(t0);
	r->client_ok = cdone && !cfail;
	r->server_ok = sdone && !sfail;
	r->verify = SSL_get_verify_result(client);
	r->version = SSL_version(client);
	r->alpn[0] = '\0';
	if (r->client_ok) {
		const unsigned char *a = NULL;
		unsigned int alen = 0;
		SSL_get0_alpn_selected(client, &a, &alen);
		if (a && alen < sizeof(r->alpn)) {
			memcpy(r->alpn, a, alen);
			r->alpn[alen] = '\0';
		}
	}
	ERR_clear_error();
}

/* Reads exactly n bytes from a non-blocking SSL, waiting on fd. */
static bool ssl_read_n(SSL *ssl, int fd, char *buf, size_t n)
{
	size_t got = 0;

	for (int rounds = 0; got < n && rounds < 100; rounds++) {
		int rc = SSL_read(ssl, buf + got, (int)(n - got));
		if (rc > 0) {
			got += (size_t)rc;
			continue;
		}
		if (SSL_get_error(ssl, rc) != SSL_ERROR_WANT_READ)
			return false;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 2000) <= 0)
			return false;
	}
	return got == n;
}

struct client_opts {
	const char *verify_host; /* name checked (and sent as SNI), or NULL */
	const char *verify_ip;   /* address checked, or NULL */
	const unsigned char *alpn;
	unsigned alpn_len;
	int max_version; /* 0: any */
};

/* One connection: server from sbx_mitm_server_ssl for host, a verifying client with opts. When
 * exchange, sends "ping" and "pong" across after the handshake. */
static void connect_pair(struct sbx_mitm *m, const char *host, const struct client_opts *o, bool exchange,
			 struct hs_result *r, bool *exchanged, bool *no_ticket)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL *client = NULL, *server = NULL;
	sbx_err err = SBX_ERR_INIT;
	int sv[2] = {-1, -1};

	memset(r, 0, sizeof(*r));
	if (exchanged)
		*exchanged = false;
	if (no_ticket)
		*no_ticket = false;
	if (!cctx || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
		diag("client setup: %s", strerror(errno));
		goto out;
	}
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(cctx, sbx_mitm_ca_path(m), NULL) != 1)
		goto out;
	if (o->max_version) {
		/* TLS below 1.2 needs SHA-1, which level 0 alone allows: this client offers it for real. */
		SSL_CTX_set_security_level(cctx, 0);
		SSL_CTX_set_min_proto_version(cctx, TLS1_VERSION);
		SSL_CTX_set_max_proto_version(cctx, o->max_version);
	}
	client = SSL_new(cctx);
	server = sbx_mitm_server_ssl(m, sv[0], host, &err);
	if (!client || !server) {
		diag("server_ssl: %s", err.msg);
		goto out;
	}
	SSL_set_fd(client, sv[1]);
	if (o->verify_host && (SSL_set1_host(client, o->verify_host) != 1 || SSL_set_tlsext_host_name(client, o->verify_host) != 1))
		goto out;
	if (o->verify_ip && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(client), o->verify_ip) != 1)
		goto out;
	if (o->alpn && SSL_set_alpn_protos(client, o->alpn, o->alpn_len) != 0)
		goto out;
	SSL_set_connect_state(client);
	handshake(client, server, sv[1], sv[0], r);
	if (exchange && r->client_ok && r->server_ok) {
		char buf[8] = "";
		bool okay = SSL_write(client, "ping", 4) == 4 && ssl_read_n(server, sv[0], buf, 4) && !memcmp(buf, "ping", 4) &&
			    SSL_write(server, "pong", 4) == 4 && ssl_read_n(client, sv[1], buf, 4) && !memcmp(buf, "pong", 4);
		if (exchanged)
			*exchanged = okay;
		if (no_ticket)
			*no_ticket = SSL_get_session(client) && !SSL_SESSION_has_ticket(SSL_get_session(client));
	}
out:
	ERR_clear_error();
	SSL_free(client);
	SSL_free(server);
	SSL_CTX_free(cctx);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
}

static const unsigned char alpn_h2_h1[] = "\x02h2\x08http/1.1";
static const unsigned char alpn_h2[] = "\x02h2";

static void test_handshakes(struct sbx_mitm *m)
{
	struct hs_result r;
	bool exchanged, no_ticket;
	struct client_opts o;
	sbx_err err = SBX_ERR_INIT;

	/* Warm the cache so the timing below is the handshake's. */
	X509_free(sbx_mitm_leaf(m, "hs.example.com", &err));

	o = (struct client_opts){.verify_host = "hs.example.com", .alpn = alpn_h2_h1, .alpn_len = sizeof(alpn_h2_h1) - 1};
	connect_pair(m, "hs.example.com", &o, true, &r, &exchanged, &no_ticket);
	ok(r.client_ok && r.server_ok, "a client trusting ca.pem alone completes a handshake for hs.example.com");
	is_int(r.verify, X509_V_OK, "... with the chain and the name verified");
	is_str(r.alpn, "http/1.1", "... and a client offering h2,http/1.1 gets http/1.1");
	is_int(r.version, TLS1_3_VERSION, "... over TLS 1.3");
	ok(exchanged, "bytes go both ways after the handshake");
	ok(no_ticket, "no session ticket is issued");
	diag("handshake (TLS 1.3, cached leaf, socketpair): %.0f us", r.us);

	o = (struct client_opts){.verify_host = "hs.example.com", .alpn = alpn_h2_h1, .alpn_len = sizeof(alpn_h2_h1) - 1,
				 .max_version = TLS1_2_VERSION};
	connect_pair(m, "hs.example.com", &o, true, &r, &exchanged, NULL);
	ok(r.client_ok && r.server_ok && r.version == TLS1_2_VERSION && exchanged && !strcmp(r.alpn, "http/1.1"),
	   "a TLS 1.2 client completes a handshake and gets http/1.1");
	diag("handshake (TLS 1.2): %.0f us", r.us);

	o = (struct client_opts){.verify_host = "hs.example.com", .max_version = TLS1_1_VERSION};
	connect_pair(m, "hs.example.com", &o, false, &r, NULL, NULL);
	ok(!r.client_ok && !r.server_ok, "a client limited to TLS 1.1 is refused");

	o = (struct client_opts){.verify_host = "hs.example.com"};
	connect_pair(m, "hs.example.com", &o, true, &r, &exchanged, NULL);
	ok(r.client_ok && r.server_ok && exchanged && r.alpn[0] == '\0', "a client without ALPN gets none and talks");

	o = (struct client_opts){.verify_host = "hs.example.com", .alpn = alpn_h2, .alpn_len = sizeof(alpn_h2) - 1};
	connect_pair(m, "hs.example.com", &o, false, &r, NULL, NULL);
	ok(!r.client_ok && !r.server_ok && r.verify == X509_V_OK,
	   "a client offering h2 alone is refused (no_application_protocol), not misled");

	o = (struct client_opts){.verify_ip = "127.0.0.1", .alpn = alpn_h2_h1, .alpn_len = sizeof(alpn_h2_h1) - 1};
	connect_pair(m, "127.0.0.1", &o, true, &r, &exchanged, NULL);
	ok(r.client_ok && r.server_ok && r.verify == X509_V_OK && exchanged, "a handshake for 127.0.0.1 verifies the address");

	o = (struct client_opts){.verify_ip = "::1"};
	connect_pair(m, "::1", &o, true, &r, &exchanged, NULL);
	ok(r.client_ok && r.server_ok && r.verify == X509_V_OK && exchanged, "a handshake for ::1 verifies the address");

	o = (struct client_opts){.verify_host = "other.example.com"};
	connect_pair(m, "hs.example.com", &o, false, &r, NULL, NULL);
	ok(!r.client_ok && r.verify == X509_V_ERR_HOSTNAME_MISMATCH,
	   "a client expecting another name rejects the leaf (%s)", X509_verify_cert_error_string(r.verify));

	/* Several connections in a row share the cached leaf. */
	{
		unsigned long minted0, minted;
		int good = 0;
		sbx_mitm_stats(m, &minted0, NULL);
		o = (struct client_opts){.verify_host = "hs.example.com", .alpn = alpn_h2_h1, .alpn_len = sizeof(alpn_h2_h1) - 1};
		for (int i = 0; i < 5; i++) {
			connect_pair(m, "hs.example.com", &o, true, &r, &exchanged, NULL);
			good += r.client_ok && r.server_ok && exchanged;
		}
		sbx_mitm_stats(m, &minted, NULL);
		ok(good == 5 && minted == minted0, "five more connections, no new mint");
	}
	ok(ERR_peek_error() == 0, "the OpenSSL error queue is empty after the handshakes");
}

/* Diagnostics only: how long a mint, an SSL set-up, and (for comparison) an SSL_CTX take. */
static void timings(struct sbx_mitm *m)
{
	enum { N = 200 };
	sbx_err err = SBX_ERR_INIT;
	uint64_t t0;
	int failed = 0;

	t0 = sbx_monotonic_ns();
	for (int i = 0; i < N; i++) {
		char name[64];
		snprintf(name, sizeof(name), "timing-%d.example.net", i);
		X509 *x = sbx_mitm_leaf(m, name, &err);
		failed += !x;
		X509_free(x);
	}
	diag("leaf mint (P-256 key + ECDSA signature): %.1f us each over %d", elapsed_us(t0) / N, N);
	t0 = sbx_monotonic_ns();
	for (int i = 0; i < N; i++) {
		SSL *s = sbx_mitm_server_ssl(m, -1, "timing-7.example.net", &err);
		failed += !s;
		SSL_free(s);
	}
	diag("server SSL with a cached leaf (SSL_new + use_certificate + use_PrivateKey): %.1f us each", elapsed_us(t0) / N);
	t0 = sbx_monotonic_ns();
	for (int i = 0; i < 20; i++)
		SSL_CTX_free(SSL_CTX_new(TLS_server_method()));
	diag("for comparison, SSL_CTX_new + free: %.1f us each", elapsed_us(t0) / 20);
	is_int(failed, 0, "timing runs minted and set up every connection");
}

int main(void)
{
	struct sbx_mitm *m = NULL, *m2 = NULL;
	sbx_err err = SBX_ERR_INIT;
	char dir[256];

	snprintf(tmp_root, sizeof(tmp_root), "/tmp/sbx-test-mitm-XXXXXX");
	if (!mkdtemp(tmp_root)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	test_create_and_reopen();

	path_in(dir, sizeof(dir), tmp_root, "state/ca");
	ok(sbx_mitm_open(dir, &m, &err) == 0, "the CA opens for the leaf tests (%s)", err.msg);
	path_in(dir, sizeof(dir), tmp_root, "other-install");
	ok(sbx_mitm_open(dir, &m2, &err) == 0, "a second install gets its own CA (%s)", err.msg);
	if (m) {
		test_leaves(m, m2);
		test_cache(m);
		test_invalid_names(m);
		test_handshakes(m);
		timings(m);
	}
	sbx_mitm_free(m);
	sbx_mitm_free(m2);
	test_tampered();

	if (sbx_rm_rf(tmp_root) < 0)
		diag("cannot remove %s: %s", tmp_root, strerror(errno));
	return done_testing();
}
