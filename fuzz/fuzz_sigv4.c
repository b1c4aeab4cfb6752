// FUZZ_SOURCES: src/daemon/sigv4.c src/common/err.c
// FUZZ_LIBS: -lcrypto
/* fuzz_sigv4.c - libFuzzer target for the SigV4 module (src/daemon/sigv4.c).
 *
 * One input is used three ways:
 *   1. whole, as an Authorization value (sbx_sigv4_parse_auth), as a query
 *      (sbx_sigv4_is_presigned) and, up to its first NUL, as a host name (sbx_sigv4_host_scope);
 *   2. split at '\n' into FLAGS, METHOD, PATH, QUERY, SIGNED_HEADERS, PAYLOAD_HASH and then
 *      header lines "name:value"; FLAGS may hold 's' (S3 path rules), 't' (sign with a session
 *      token), 'n' (no query at all). That request goes through sbx_sigv4_canonical_request, into
 *      a large buffer and into one whose size the input picks, and through sbx_sigv4_sign.
 * Beyond memory safety it checks the module's promises with abort():
 *   - a parsed header is well formed (terminated fields of the right alphabets, 64 hex digits, a
 *     real date, host in the list), prints back to a value that parses to the same fields, and
 *     a failure leaves the output zeroed with a message;
 *   - is_presigned does not change when unrelated parameters are added around the query;
 *   - host_scope ignores case, and what it returns is a plausible service and region;
 *   - a canonical request starts with the method, its URI (outside S3) and query lines hold only
 *     unreserved characters and %XX, and a smaller buffer yields the same bytes or a clean error;
 *   - a signature is deterministic, parses back with the right scope and key, and lists
 *     x-amz-security-token exactly when a token was used; a refusal's message does not carry
 *     the secret key (unless the input itself does).
 * Build and run with fuzz/Makefile; replay_main.c replays corpora without libFuzzer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Longer inputs add nothing the caps do not already cover, only time. */
#define MAX_INPUT 16384
#define MAX_HEADERS 32
#define AMZ_DATE "20150830T123600Z"

static bool terminated(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

static bool all_in(const char *s, const char *set_extra, bool lower_alnum)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (!lower_alnum && c >= 'A' && c <= 'Z');
		if (!ok && !(c && strchr(set_extra, c)))
			return false;
	}
	return true;
}

static bool list_has(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, ';');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == n && !memcmp(p, name, n))
			return true;
		p = e ? e + 1 : NULL;
	}
	return false;
}

static void check_auth(const struct sbx_sigv4_auth *a)
{
	CHECK(terminated(a->access_key, sizeof(a->access_key)) && a->access_key[0]);
	CHECK(!strchr(a->access_key, '/') && !strchr(a->access_key, ',') && !strchr(a->access_key, ' '));
	CHECK(terminated(a->date, sizeof(a->date)) && strlen(a->date) == 8 && all_in(a->date, "", true));
	CHECK(a->date[4] <= '1' && !(a->date[4] == '0' && a->date[5] == '0'));
	CHECK(terminated(a->region, sizeof(a->region)) && a->region[0] && all_in(a->region, "-", true));
	CHECK(terminated(a->service, sizeof(a->service)) && a->service[0] && all_in(a->service, "-", true));
	CHECK(terminated(a->signed_headers, sizeof(a->signed_headers)) && list_has(a->signed_headers, "host"));
	CHECK(terminated(a->signature, sizeof(a->signature)) && strlen(a->signature) == 64 &&
	      strspn(a->signature, "0123456789abcdef") == 64);
}

static void fuzz_auth(const char *s, size_t n)
{
	struct sbx_sigv4_auth a, b;
	sbx_err err = SBX_ERR_INIT;
	static const struct sbx_sigv4_auth zero;

	if (sbx_sigv4_parse_auth(s, n, &a, &err) == 0) {
		char again[SBX_SIGV4_AUTH_MAX + 64];
		int len;

		check_auth(&a);
		len = snprintf(again, sizeof(again),
			       "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
			       a.access_key, a.date, a.region, a.service, a.signed_headers, a.signature);
		CHECK(len > 0 && (size_t)len < sizeof(again));
		CHECK(sbx_sigv4_parse_auth(again, (size_t)len, &b, &err) == 0);
		CHECK(memcmp(&a, &b, sizeof(a)) == 0);
	} else {
		CHECK(err.code != SBX_E_OK && err.msg[0]);
		CHECK(memcmp(&a, &zero, sizeof(a)) == 0);
		CHECK(!strchr(err.msg, '\n') && !strchr(err.msg, '\r'));
	}
}

static void fuzz_presigned(const char *s, size_t n)
{
	bool p = sbx_sigv4_is_presigned(s, n);
	char *wrapped = malloc(n + 16);

	if (!wrapped)
		return;
	/* "zz=1&" QUERY "&a": two more parameters, neither of them a presigning one */
	memcpy(wrapped, "zz=1&", 5);
	memcpy(wrapped + 5, s, n);
	memcpy(wrapped + 5 + n, "&a", 2);
	CHECK(sbx_sigv4_is_presigned(wrapped, n + 5) == p);
	CHECK(sbx_sigv4_is_presigned(wrapped, n + 7) == p);
	free(wrapped);
}

static void fuzz_host(const char *s, size_t n)
{
	char host[512], upper[512], svc[64], reg[64], svc2[64], reg2[64];
	size_t l = strnlen(s, n < sizeof(host) - 1 ? n : sizeof(host) - 1);
	int rc;

	memcpy(host, s, l);
	host[l] = '\0';
	rc = sbx_sigv4_host_scope(host, svc, sizeof(svc), reg, sizeof(reg));
	for (size_t i = 0; i <= l; i++)
		upper[i] = (host[i] >= 'a' && host[i] <= 'z') ? (char)(host[i] - 'a' + 'A') : host[i];
	CHECK(sbx_sigv4_host_scope(upper, svc2, sizeof(svc2), reg2, sizeof(reg2)) == rc);
	if (rc == 0) {
		CHECK(svc[0] && reg[0] && all_in(svc, "-", true) && all_in(reg, "-", true));
		CHECK(!strcmp(svc, svc2) && !strcmp(reg, reg2));
		CHECK(strchr(reg, '-') != NULL);
	} else {
		CHECK(!svc[0] && !reg[0]);
	}
}

/* Only unreserved characters, the given extras, and %XX with uppercase hex. */
static bool canonical_encoded(const char *s, size_t n, const char *extra)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			if (i + 2 >= n || !strchr(hex, s[i + 1]) || !strchr(hex, s[i + 2]) || !s[i + 1] || !s[i + 2])
				return false;
			i += 2;
			continue;
		}
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-._~", c) ||
		      strchr(extra, c)) ||
		    !c)
			return false;
	}
	return true;
}

static void check_canonical(const char *canon, const char *method, bool s3)
{
	const char *l1 = strchr(canon, '\n'), *l2, *l3;

	CHECK(l1 && (size_t)(l1 - canon) == strlen(method) && !memcmp(canon, method, strlen(method)));
	l2 = strchr(l1 + 1, '\n');
	CHECK(l2);
	if (!s3)
		CHECK(canonical_encoded(l1 + 1, (size_t)(l2 - l1 - 1), "/"));
	l3 = strchr(l2 + 1, '\n');
	CHECK(l3 && canonical_encoded(l2 + 1, (size_t)(l3 - l2 - 1), "=&"));
}

static void fuzz_request(const char *s, size_t n, size_t small_cap)
{
	char *copy = malloc(n + 1), *field[6] = {0}, *cur, *canon = malloc(SBX_SIGV4_CANONICAL_MAX), *small = NULL;
	struct sbx_sigv4_header h[MAX_HEADERS];
	struct sbx_sigv4_request r = {0};
	struct sbx_sigv4_creds c = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL};
	char out[SBX_SIGV4_AUTH_MAX], out2[SBX_SIGV4_AUTH_MAX];
	sbx_err err = SBX_ERR_INIT;
	int crc, src;

	if (!copy || !canon)
		goto out;
	memcpy(copy, s, n);
	copy[n] = '\0';
	cur = copy;
	for (int i = 0; i < 6; i++) {
		char *nl = strchr(cur, '\n');

		field[i] = cur;
		if (!nl) {
			if (i < 5)
				goto out;
			cur = NULL;
			break;
		}
		*nl = '\0';
		cur = nl + 1;
	}
	while (cur && r.nheaders < MAX_HEADERS) {
		char *nl = strchr(cur, '\n'), *colon = strchr(cur, ':');

		if (nl)
			*nl = '\0';
		if (colon)
			h[r.nheaders++] = (struct sbx_sigv4_header){cur, (size_t)(colon - cur), colon + 1, strlen(colon + 1)};
		cur = nl ? nl + 1 : NULL;
	}
	r.method = field[1];
	r.path = field[2];
	r.path_len = strlen(field[2]);
	if (!strchr(field[0], 'n')) {
		r.query = field[3];
		r.query_len = strlen(field[3]);
	}
	r.headers = h;
	r.payload_hash = field[5];
	r.s3_style_path = strchr(field[0], 's') != NULL;
	if (strchr(field[0], 't'))
		c.session_token = "FQoGZXIvYXdzEXAMPLE//token+=";

	crc = sbx_sigv4_canonical_request(&r, field[4], canon, SBX_SIGV4_CANONICAL_MAX, &err);
	if (crc == 0) {
		size_t len = strlen(canon);

		check_canonical(canon, r.method, r.s3_style_path);
		small = malloc(small_cap);
		if (small) {
			sbx_err e2 = SBX_ERR_INIT;
			int rc2 = sbx_sigv4_canonical_request(&r, field[4], small, small_cap, &e2);

			CHECK(rc2 == (len < small_cap ? 0 : -1));
			CHECK(rc2 == 0 ? !strcmp(small, canon) : (!small[0] && e2.msg[0]));
		}
	} else {
		CHECK(err.msg[0] && !canon[0]);
	}

	src = sbx_sigv4_sign(&r, &c, AMZ_DATE, "us-east-1", "service", field[4], out, sizeof(out), &err);
	if (src == 0) {
		struct sbx_sigv4_auth a;

		CHECK(sbx_sigv4_parse_auth(out, strlen(out), &a, &err) == 0);
		CHECK(!strcmp(a.access_key, "AKIDEXAMPLE") && !strcmp(a.date, "20150830") && !strcmp(a.region, "us-east-1") &&
		      !strcmp(a.service, "service"));
		CHECK(list_has(a.signed_headers, "x-amz-security-token") == (c.session_token != NULL));
		CHECK(sbx_sigv4_sign(&r, &c, AMZ_DATE, "us-east-1", "service", field[4], out2, sizeof(out2), &err) == 0);
		CHECK(!strcmp(out, out2));
		/* without a token the list signed is the one given, so the canonical request exists */
		if (!c.session_token)
			CHECK(crc == 0 || strstr(field[4], "x-amz-security-token"));
	} else {
		CHECK(err.msg[0] && !out[0]);
		/* messages quote the request, never the keys: the secret shows only if the sandbox sent it */
		CHECK(!strstr(err.msg, c.secret_key) || memmem(s, n, c.secret_key, strlen(c.secret_key)));
	}
out:
	free(copy);
	free(canon);
	free(small);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;

	if (size > MAX_INPUT)
		return 0;
	fuzz_auth(s, size);
	fuzz_presigned(s, size);
	fuzz_host(s, size);
	fuzz_request(s, size, size ? 1 + (size_t)data[0] * 4 : 1);
	return 0;
}
