/* test_sigv4.c - AWS Signature Version 4 (src/daemon/sigv4.c).
 *
 *   test_sigv4 [VECTOR_DIR]    TAP (default VECTOR_DIR: tests/unit/sigv4)
 *   test_sigv4 --sign          one request in a line protocol on stdin; prints the Authorization
 *                              value, then the canonical request (tests/test_sigv4_botocore.py)
 *
 * The vectors are the public AWS SigV4 test suite (see tests/unit/sigv4/README). Each one is run
 * the way the proxy works: the published Authorization header is parsed for its scope and signed
 * header list, then the request is signed again with the suite's keys and must come out as the
 * published header, byte for byte; the canonical request and the string to sign are compared on
 * the way. Then: the parser on valid and malformed headers, presigned URL detection, the scope
 * of host names, and each rule sign() enforces (session token, a missing signed header, dates,
 * payload hashes, sizes).
 *
 * --sign reads "KEY VALUE" lines: authorization (the agent's header: scope and signed headers
 * come from it), or region / service / signed_headers; method, path, query, header NAME:VALUE
 * (repeatable, the value as sent), payload, access_key, secret_key, session_token, amz_date,
 * s3 (1 for S3 path rules). Exit 0 signed, 1 refused (message on stderr), 2 bad input. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/sigv4.h"
#include "tap.h"
#include "util.h"

#define SUITE_AKID "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE "20150830T123600Z"
#define EMPTY_HASH "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MAX_FILE (256 * 1024)
#define MAX_HEADERS 64

/* ---- a request read from the suite's request.txt ---- */

struct parsed {
	char *buf;
	char method[33];
	struct sbx_sigv4_header h[MAX_HEADERS + 1];
	struct sbx_sigv4_request req;
	char payload[65];
};

/* "METHOD TARGET HTTP/1.1\nName:value\n...\n\nbody". The target runs to the last " HTTP/" (the
 * suite has a path with a space in it). */
static int parse_request_file(struct parsed *p, char *buf, size_t len)
{
	char *line_end = memchr(buf, '\n', len), *sp, *http, *target, *q, *cur, *end = buf + len;
	size_t n = 0;

	memset(p, 0, sizeof(*p));
	p->buf = buf;
	if (!line_end || !(sp = memchr(buf, ' ', (size_t)(line_end - buf))) || (size_t)(sp - buf) >= sizeof(p->method))
		return -1;
	memcpy(p->method, buf, (size_t)(sp - buf));
	*line_end = '\0';
	http = strstr(sp + 1, " HTTP/");
	while (http && strstr(http + 1, " HTTP/"))
		http = strstr(http + 1, " HTTP/");
	if (!http)
		return -1;
	target = sp + 1;
	q = memchr(target, '?', (size_t)(http - target));
	p->req.path = target;
	p->req.path_len = (size_t)((q ? q : http) - target);
	if (q) {
		p->req.query = q + 1;
		p->req.query_len = (size_t)(http - q - 1);
	}
	cur = line_end + 1;
	while (cur < end && *cur != '\n') {
		char *nl = memchr(cur, '\n', (size_t)(end - cur)), *colon;

		if (!nl)
			nl = end;
		colon = memchr(cur, ':', (size_t)(nl - cur));
		if (!colon || n == MAX_HEADERS)
			return -1;
		p->h[n++] = (struct sbx_sigv4_header){cur, (size_t)(colon - cur), colon + 1, (size_t)(nl - colon - 1)};
		cur = nl + 1;
	}
	if (cur < end)
		cur++; /* the blank line */
	sbx_sha256_hex(cur < end ? cur : "", cur < end ? (size_t)(end - cur) : 0, p->payload);
	p->req.method = p->method;
	p->req.headers = p->h;
	p->req.nheaders = n;
	p->req.payload_hash = p->payload;
	return 0;
}

static char *read_opt(const char *dir, const char *name, size_t *len)
{
	char path[4096];
	char *out = NULL;
	size_t n = 0;
	sbx_err err = SBX_ERR_INIT;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (access(path, F_OK) != 0)
		return NULL;
	if (sbx_read_file(path, MAX_FILE, &out, &n, &err) < 0) {
		diag("%s: %s", path, err.msg);
		return NULL;
	}
	if (len)
		*len = n;
	return out;
}

/* The value of "key value" in a context file, copied into out ("" if absent). */
static void ctx_get(const char *ctx, const char *key, char *out, size_t outlen)
{
	size_t kl = strlen(key);
	const char *p = ctx;

	out[0] = '\0';
	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p) : strlen(p);

		if (ll > kl && !strncmp(p, key, kl) && p[kl] == ' ') {
			size_t vl = ll - kl - 1 < outlen - 1 ? ll - kl - 1 : outlen - 1;
			memcpy(out, p + kl + 1, vl);
			out[vl] = '\0';
			return;
		}
		p = nl ? nl + 1 : NULL;
	}
}

static const char *header_value(const struct sbx_sigv4_request *r, const char *name, char *out, size_t outlen)
{
	for (size_t i = 0; i < r->nheaders; i++)
		if (r->headers[i].name_len == strlen(name) && !strncasecmp(r->headers[i].name, name, strlen(name))) {
			size_t n = r->headers[i].value_len < outlen - 1 ? r->headers[i].value_len : outlen - 1;
			memcpy(out, r->headers[i].value, n);
			out[n] = '\0';
			return out;
		}
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_vector(const char *dir, const char *name)
{
	char *req_txt, *creq, *sts, *authz, *ctx;
	size_t req_len = 0;
	char token[17000], sign_with[1024], amz_date[32], out[SBX_SIGV4_AUTH_MAX], sts_out[256];
	char *canon = malloc(SBX_SIGV4_CANONICAL_MAX);
	struct parsed p;
	struct sbx_sigv4_auth auth;
	struct sbx_sigv4_creds creds = {SUITE_AKID, SUITE_SECRET, NULL};
	sbx_err err = SBX_ERR_INIT;
	int rc;

	req_txt = read_opt(dir, "request.txt", &req_len);
	creq = read_opt(dir, "canonical-request.txt", NULL);
	sts = read_opt(dir, "string-to-sign.txt", NULL);
	authz = read_opt(dir, "authorization.txt", NULL);
	ctx = read_opt(dir, "context.txt", NULL);
	if (!canon || !req_txt || !creq || !sts || !authz || parse_request_file(&p, req_txt, req_len) < 0) {
		ok(0, "%s: request.txt, canonical-request.txt, string-to-sign.txt and authorization.txt readable", name);
		goto out;
	}
	ctx_get(ctx, "session_token", token, sizeof(token));
	ctx_get(ctx, "sign_with", sign_with, sizeof(sign_with));
	ctx_get(ctx, "amz_date", amz_date, sizeof(amz_date));
	if (!amz_date[0] && !header_value(&p.req, "x-amz-date", amz_date, sizeof(amz_date)))
		strcpy(amz_date, SUITE_DATE);
	creds.session_token = token[0] ? token : NULL;

	rc = sbx_sigv4_parse_auth(authz, strlen(authz), &auth, &err);
	if (!ok(rc == 0 && !strncmp(auth.date, amz_date, 8) && !strcmp(auth.access_key, SUITE_AKID),
		"%s: the published Authorization parses", name)) {
		diag("%s", err.msg);
		goto out;
	}

	/* The canonical request as the service sees the forwarded request: with the token header
	 * the proxy adds. */
	if (token[0] && p.req.nheaders < MAX_HEADERS && !header_value(&p.req, "x-amz-security-token", out, 2))
		p.h[p.req.nheaders++] = (struct sbx_sigv4_header){"X-Amz-Security-Token", 20, token, strlen(token)};
	rc = sbx_sigv4_canonical_request(&p.req, auth.signed_headers, canon, SBX_SIGV4_CANONICAL_MAX, &err);
	if (rc < 0)
		diag("%s", err.msg);
	is_str(rc == 0 ? canon : err.msg, creq, "%s: canonical request", name);

	rc = sbx_sigv4_string_to_sign(canon, strlen(canon), amz_date, auth.region, auth.service, sts_out,
				      sizeof(sts_out), &err);
	is_str(rc == 0 ? sts_out : err.msg, sts, "%s: string to sign", name);

	/* Signing from the request as the agent sent it. */
	if (token[0] && sign_with[0])
		p.req.nheaders--; /* the vector's request did not carry the token */
	rc = sbx_sigv4_sign(&p.req, &creds, amz_date, auth.region, auth.service,
			    sign_with[0] ? sign_with : auth.signed_headers, out, sizeof(out), &err);
	is_str(rc == 0 ? out : err.msg, authz, "%s: re-signed Authorization is the published one", name);
out:
	free(canon);
	free(req_txt);
	free(creq);
	free(sts);
	free(authz);
	free(ctx);
}

static void test_vectors(const char *dir)
{
	DIR *d = opendir(dir);
	char *names[256];
	size_t n = 0;
	struct dirent *e;

	if (!ok(d != NULL, "vector directory %s opens", dir))
		return;
	while ((e = readdir(d)) && n < 256) {
		char sub[4096];
		struct stat st;

		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		if (e->d_name[0] != '.' && stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_str);
	/* the suite has 35 vectors here; fewer means files went missing */
	ok(n >= 35, "%zu vectors found in %s", n, dir);
	for (size_t i = 0; i < n; i++) {
		char sub[4096];

		snprintf(sub, sizeof(sub), "%s/%s", dir, names[i]);
		run_vector(sub, names[i]);
		free(names[i]);
	}
}

/* ---- the Authorization parser ---- */

#define SIG64 "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
#define GOOD "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, " \
	     "SignedHeaders=host;x-amz-date, Signature=" SIG64

static int parse(const char *s, struct sbx_sigv4_auth *a, sbx_err *err)
{
	return sbx_sigv4_parse_auth(s, strlen(s), a, err);
}

static void test_parse_valid(void)
{
	struct sbx_sigv4_auth a;
	sbx_err err = SBX_ERR_INIT;
	static const char *const forms[] = {
		GOOD,
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request,"
		"SignedHeaders=host;x-amz-date,Signature=" SIG64,
		"  AWS4-HMAC-SHA256   Signature=" SIG64 ",  SignedHeaders=host;x-amz-date,\t"
		"Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request \t",
	};

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		int rc = parse(forms[i], &a, &err);
		ok(rc == 0 && !strcmp(a.access_key, "AKIDEXAMPLE") && !strcmp(a.date, "20150830") &&
			   !strcmp(a.region, "us-east-1") && !strcmp(a.service, "service") &&
			   !strcmp(a.signed_headers, "host;x-amz-date") && !strcmp(a.signature, SIG64),
		   "parse_auth: form %zu read field by field", i);
		if (rc)
			diag("%s", err.msg);
	}
	ok(parse("AWS4-HMAC-SHA256 Credential=proxy-managed/20160229/eu-west-1/s3/aws4_request, SignedHeaders=host, "
		 "Signature=" SIG64,
		 &a, &err) == 0 &&
		   !strcmp(a.access_key, "proxy-managed") && !strcmp(a.date, "20160229") && !strcmp(a.service, "s3") &&
		   !strcmp(a.signed_headers, "host"),
	   "parse_auth: placeholder key, leap day, host alone");
	ok(parse("AWS4-HMAC-SHA256 Credential=A/20000229/cn-north-1/execute-api/aws4_request, "
		 "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token;x-amz-target, "
		 "Signature=" SIG64,
		 &a, &err) == 0 &&
		   !strcmp(a.region, "cn-north-1") && !strcmp(a.service, "execute-api"),
	   "parse_auth: 2000-02-29, a longer list");
}

static void test_parse_malformed(void)
{
	static const struct {
		const char *in, *want; /* want: a piece of the message */
	} cases[] = {
		{"", "not AWS Signature Version 4"},
		{"AWS4-HMAC-SHA256", "nothing after"},
		{"AWS4-HMAC-SHA256   ", "nothing after"},
		{"AWS4-ECDSA-P256-SHA256 Credential=AKIDEXAMPLE/20150830/service/aws4_request, SignedHeaders=host, "
		 "Signature=" SIG64,
		 "not supported"},
		{"AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=", "not AWS Signature Version 4"},
		{"Bearer abc", "not AWS Signature Version 4"},
		{"aws4-hmac-sha256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host, "
		 "Signature=" SIG64,
		 "not AWS Signature Version 4"},
		{"AWS4-HMAC-SHA256Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request", "no space after"},
		{"AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=" SIG64, "Credential field is missing"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, Signature=" SIG64,
		 "SignedHeaders field is missing"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host",
		 "Signature field is missing"},
		{GOOD ", Signature=" SIG64, "Signature appears twice"},
		{GOOD ", SignedHeaders=host", "SignedHeaders appears twice"},
		{GOOD ", Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request", "Credential appears twice"},
		{GOOD ", Foo=bar", "unknown field 'Foo'"},
		{GOOD ", Foo", "has no '='"},
		{GOOD ",", "no field after"},
		{GOOD ", ", "no field after"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/aws4_request, SignedHeaders=host, Signature=" SIG64,
		 "4 '/'-separated parts"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request/x, SignedHeaders=host, "
		 "Signature=" SIG64,
		 "more than 5"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_reques, SignedHeaders=host, "
		 "Signature=" SIG64,
		 "not aws4_request"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20151330/us-east-1/service/aws4_request, SignedHeaders=host, "
		 "Signature=" SIG64,
		 "'20151330' is not a YYYYMMDD date"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150230/us-east-1/service/aws4_request, SignedHeaders=host, "
		 "Signature=" SIG64,
		 "not a YYYYMMDD date"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150229/us-east-1/service/aws4_request, SignedHeaders=host, "
		 "Signature=" SIG64,
		 "not a YYYYMMDD date"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/19000229/us-east-1/service/aws4_request, SignedHeaders=host, "
		 "Signature=" SIG64,
		 "not a YYYYMMDD date"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015083a/us-east-1/service/aws4_request, SignedHeaders=host, "
		 "Signature=" SIG64,
		 "not a YYYYMMDD date"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015083/us-east-1/service/aws4_request, SignedHeaders=host, "
		 "Signature=" SIG64,
		 "not a YYYYMMDD date"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/201508300/us-east-1/service/aws4_request, SignedHeaders=host, "
		 "Signature=" SIG64,
		 "not a YYYYMMDD date"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150800/us-east-1/service/aws4_request, SignedHeaders=host, "
		 "Signature=" SIG64,
		 "not a YYYYMMDD date"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/US-EAST-1/service/aws4_request, SignedHeaders=host, "
		 "Signature=" SIG64,
		 "region 'US-EAST-1'"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830//service/aws4_request, SignedHeaders=host, "
		 "Signature=" SIG64,
		 "region ''"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/my_service/aws4_request, SignedHeaders=host, "
		 "Signature=" SIG64,
		 "service 'my_service'"},
		{"AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/service/aws4_request, SignedHeaders=host, Signature=" SIG64,
		 "access key id ''"},
		{"AWS4-HMAC-SHA256 Credential=AK ID/20150830/us-east-1/service/aws4_request, SignedHeaders=host, "
		 "Signature=" SIG64,
		 "access key id 'AK ID'"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host, "
		 "Signature=" SIG64 "0",
		 "65 characters"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host, "
		 "Signature=5FA00FA31553B73EBF1942676E86291E8372FF2A2260956D9B8AAE1D763FBF31",
		 "not lowercase hex"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host, "
		 "Signature=",
		 "0 characters"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
		 "SignedHeaders=x-amz-date;host, Signature=" SIG64,
		 "not sorted ('host' after 'x-amz-date')"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
		 "SignedHeaders=host;host, Signature=" SIG64,
		 "'host' is listed twice"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
		 "SignedHeaders=Host;x-amz-date, Signature=" SIG64,
		 "'Host' is not a lowercase header name"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
		 "SignedHeaders=host;;x-amz-date, Signature=" SIG64,
		 "empty name"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
		 "SignedHeaders=, Signature=" SIG64,
		 "empty"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
		 "SignedHeaders=x-amz-date, Signature=" SIG64,
		 "does not include host"},
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
		 "SignedHeaders=host;x amz, Signature=" SIG64,
		 "not a lowercase header name"},
	};
	struct sbx_sigv4_auth a;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sbx_err err = SBX_ERR_INIT;
		int rc = parse(cases[i].in, &a, &err);

		if (!ok(rc == -1 && err.code != SBX_E_OK && strstr(err.msg, cases[i].want) && !a.access_key[0] &&
				!a.signature[0],
			"parse_auth refuses case %zu (%s)", i, cases[i].want))
			diag("rc %d, message '%s'", rc, err.msg);
	}
}

static void test_parse_limits(void)
{
	struct sbx_sigv4_auth a;
	sbx_err err = SBX_ERR_INIT;
	char buf[8192], list[2048];
	size_t n;

	/* A NUL inside the given length. */
	memcpy(buf, GOOD, sizeof(GOOD));
	n = strlen(GOOD);
	buf[40] = '\0';
	ok(sbx_sigv4_parse_auth(buf, n, &a, &err) == -1 && strstr(err.msg, "NUL"), "parse_auth: a NUL byte is refused");
	/* The given length bounds the read: a prefix is not the whole header. */
	ok(sbx_sigv4_parse_auth(GOOD, n - 1, &a, &err) == -1 && strstr(err.msg, "63 characters"),
	   "parse_auth: reads only len bytes");
	/* Oversize. */
	memset(buf, ' ', sizeof(buf));
	memcpy(buf, GOOD, strlen(GOOD));
	ok(sbx_sigv4_parse_auth(buf, SBX_SIGV4_AUTH_MAX + 1, &a, &err) == -1 && strstr(err.msg, "more than 4096"),
	   "parse_auth: more than %d bytes is refused", SBX_SIGV4_AUTH_MAX);
	ok(sbx_sigv4_parse_auth(buf, SBX_SIGV4_AUTH_MAX, &a, &err) == 0, "parse_auth: %d bytes (trailing spaces) is fine",
	   SBX_SIGV4_AUTH_MAX);
	/* 65 signed headers, and a list longer than the field. */
	n = (size_t)snprintf(list, sizeof(list), "host");
	for (int i = 0; i < 64; i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, ";x-h%02d", i);
	snprintf(buf, sizeof(buf),
		 "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/s/aws4_request, SignedHeaders=%s, Signature=" SIG64, list);
	ok(parse(buf, &a, &err) == -1 && strstr(err.msg, "more than 64"), "parse_auth: 65 signed headers are refused");
	n = (size_t)snprintf(list, sizeof(list), "host");
	while (n < 1100)
		n += (size_t)snprintf(list + n, sizeof(list) - n, ";x-a-rather-long-header-name-%03zu", n);
	snprintf(buf, sizeof(buf),
		 "AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/s/aws4_request, SignedHeaders=%s, Signature=" SIG64, list);
	ok(parse(buf, &a, &err) == -1 && strstr(err.msg, "longer than 1023"), "parse_auth: a list over 1023 characters");
	/* The widest fields still fit their arrays. */
	snprintf(buf, sizeof(buf),
		 "AWS4-HMAC-SHA256 Credential=%0127d/20150830/%063d/%063d/aws4_request, SignedHeaders=host, Signature=" SIG64,
		 0, 0, 0);
	ok(parse(buf, &a, &err) == 0 && strlen(a.access_key) == 127 && strlen(a.region) == 63 && strlen(a.service) == 63,
	   "parse_auth: 127-character key, 63-character region and service");
	snprintf(buf, sizeof(buf),
		 "AWS4-HMAC-SHA256 Credential=%0128d/20150830/us-east-1/s/aws4_request, SignedHeaders=host, Signature=" SIG64,
		 0);
	ok(parse(buf, &a, &err) == -1 && strstr(err.msg, "access key"), "parse_auth: a 128-character key is refused");
	snprintf(buf, sizeof(buf),
		 "AWS4-HMAC-SHA256 Credential=A/20150830/%064d/s/aws4_request, SignedHeaders=host, Signature=" SIG64, 0);
	ok(parse(buf, &a, &err) == -1 && strstr(err.msg, "region"), "parse_auth: a 64-character region is refused");
	/* Messages quote sandbox bytes only in a short, printable form. */
	ok(parse("AWS4-HMAC-SHA256 Credential=A/2015\n\x1b[0m830/us-east-1/s/aws4_request, SignedHeaders=host, "
		 "Signature=" SIG64,
		 &a, &err) == -1 &&
		   !strchr(err.msg, '\n') && !strchr(err.msg, '\x1b'),
	   "parse_auth: a message carries no control characters from the input");
}

/* ---- presigned URLs ---- */

static bool presigned(const char *q)
{
	return sbx_sigv4_is_presigned(q, strlen(q));
}

static void test_presigned(void)
{
	ok(presigned("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Fs3%2Faws4_request"
		     "&X-Amz-Date=20150830T123600Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=" SIG64),
	   "is_presigned: a presigned S3 URL");
	ok(presigned("list-type=2&X-Amz-Signature=abc"), "is_presigned: X-Amz-Signature alone");
	ok(presigned("X-Amz-Credential=x"), "is_presigned: X-Amz-Credential alone");
	ok(presigned("a=1&x-amz-algorithm=AWS4-HMAC-SHA256"), "is_presigned: names compared without case");
	ok(presigned("X-Amz-%53ignature=1"), "is_presigned: names compared percent-decoded");
	ok(presigned("X%2DAmz%2Dalgorithm"), "is_presigned: a name without '='");
	ok(!presigned(""), "is_presigned: empty query");
	ok(!sbx_sigv4_is_presigned(NULL, 10), "is_presigned: NULL query");
	ok(!presigned("Action=ListUsers&Version=2010-05-08"), "is_presigned: an ordinary query");
	ok(!presigned("redirect=X-Amz-Signature"), "is_presigned: the name as a value does not count");
	ok(!presigned("X-Amz-SignatureX=1&X-Amz-Signatur=2&X-Amz-Date=20150830T123600Z"),
	   "is_presigned: near misses and X-Amz-Date alone do not count");
	ok(!presigned("X-Amz-Signature%=1&X-Amz-%5"), "is_presigned: malformed escapes compared as they stand");
	ok(!sbx_sigv4_is_presigned("X-Amz-Signature=1", 10), "is_presigned: reads only len bytes");
}

/* ---- scope from host names ---- */

static void test_host_scope(void)
{
	static const struct {
		const char *host, *service, *region; /* service NULL: -1 expected */
	} cases[] = {
		{"ce.us-east-1.amazonaws.com", "ce", "us-east-1"},
		{"ce.amazonaws.com", "ce", "us-east-1"},
		{"cloudformation.eu-west-1.amazonaws.com", "cloudformation", "eu-west-1"},
		{"sts.amazonaws.com", "sts", "us-east-1"},
		{"sts.eu-central-1.amazonaws.com", "sts", "eu-central-1"},
		{"sts-fips.us-east-2.amazonaws.com", "sts", "us-east-2"},
		{"iam.amazonaws.com", "iam", "us-east-1"},
		{"IAM.AmazonAWS.com.", "iam", "us-east-1"},
		{"iam.us-gov.amazonaws.com", "iam", "us-gov-west-1"},
		{"s3.amazonaws.com", "s3", "us-east-1"},
		{"s3.eu-west-1.amazonaws.com", "s3", "eu-west-1"},
		{"bucket.s3.eu-west-1.amazonaws.com", "s3", "eu-west-1"},
		{"my.dotted.bucket.s3.amazonaws.com", "s3", "us-east-1"},
		{"us-west-2.s3.amazonaws.com", "s3", "us-east-1"}, /* a bucket named like a region */
		{"bucket.s3-us-west-2.amazonaws.com", "s3", "us-west-2"},
		{"s3-external-1.amazonaws.com", "s3", "us-east-1"},
		{"s3.dualstack.ap-southeast-2.amazonaws.com", "s3", "ap-southeast-2"},
		{"bucket.s3.dualstack.us-west-2.amazonaws.com", "s3", "us-west-2"},
		{"s3-fips.us-gov-west-1.amazonaws.com", "s3", "us-gov-west-1"},
		{"ap-123456789012.s3-accesspoint.us-west-2.amazonaws.com", "s3", "us-west-2"},
		{"123456789012.s3-control.eu-west-1.amazonaws.com", "s3", "eu-west-1"},
		{"s3.cn-north-1.amazonaws.com.cn", "s3", "cn-north-1"},
		{"sqs.us-east-1.amazonaws.com", "sqs", "us-east-1"},
		{"us-west-2.queue.amazonaws.com", "sqs", "us-west-2"},
		{"search-logs-abc123.eu-west-1.es.amazonaws.com", "es", "eu-west-1"},
		{"email.eu-west-1.amazonaws.com", "ses", "eu-west-1"},
		{"bedrock-runtime.us-west-2.amazonaws.com", "bedrock", "us-west-2"},
		{"abc123.execute-api.us-east-1.amazonaws.com", "execute-api", "us-east-1"},
		{"dynamodb.us-iso-east-1.amazonaws.com", "dynamodb", "us-iso-east-1"},
		{"ce.us-east-1.amazonaws.com:443", "ce", "us-east-1"},
		{"bucket.s3-accelerate.amazonaws.com", NULL, NULL},
		{"bucket.s3-accelerate.dualstack.amazonaws.com", NULL, NULL},
		{"bucket.s3-website-us-east-1.amazonaws.com", NULL, NULL},
		{"bucket.s3-website.eu-west-1.amazonaws.com", NULL, NULL},
		{"dualstack.us-east-1.amazonaws.com", NULL, NULL},
		{"us-east-1.amazonaws.com", NULL, NULL},
		{"amazonaws.com", NULL, NULL},
		{".amazonaws.com", NULL, NULL},
		{"evilamazonaws.com", NULL, NULL},
		{"amazonaws.com.evil.example", NULL, NULL},
		{"ce.us-east-1.amazonaws.com.evil.example", NULL, NULL},
		{"example.com", NULL, NULL},
		{"ce..amazonaws.com", NULL, NULL},
		{"ce.us-east-1.amazonaws.com:", NULL, NULL},
		{"ce.us-east-1.amazonaws.com:https", NULL, NULL},
		{"ce.us-east-1.amazonaws.com:443:443", NULL, NULL},
		{"[::1]:443", NULL, NULL},
		{"under_score.amazonaws.com", NULL, NULL},
		{"", NULL, NULL},
	};
	char svc[64], reg[64], longhost[400];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = sbx_sigv4_host_scope(cases[i].host, svc, sizeof(svc), reg, sizeof(reg));

		if (cases[i].service) {
			if (!ok(rc == 0 && !strcmp(svc, cases[i].service) && !strcmp(reg, cases[i].region),
				"host_scope %s -> %s, %s", cases[i].host, cases[i].service, cases[i].region))
				diag("rc %d, got '%s', '%s'", rc, svc, reg);
		} else {
			if (!ok(rc == -1 && !svc[0] && !reg[0], "host_scope '%s' -> not an AWS scope", cases[i].host))
				diag("rc %d, got '%s', '%s'", rc, svc, reg);
		}
	}
	ok(sbx_sigv4_host_scope(NULL, svc, sizeof(svc), reg, sizeof(reg)) == -1, "host_scope: NULL host");
	memset(longhost, 'a', sizeof(longhost));
	strcpy(longhost + sizeof(longhost) - 20, ".s3.amazonaws.com");
	ok(sbx_sigv4_host_scope(longhost, svc, sizeof(svc), reg, sizeof(reg)) == -1, "host_scope: a 399-character host");
	ok(sbx_sigv4_host_scope("ce.us-east-1.amazonaws.com", svc, 2, reg, sizeof(reg)) == -1 && !svc[0] && !reg[0],
	   "host_scope: a service buffer too small fails cleanly");
	ok(sbx_sigv4_host_scope("ce.us-east-1.amazonaws.com", svc, 3, reg, 10) == 0 && !strcmp(svc, "ce") &&
		   !strcmp(reg, "us-east-1"),
	   "host_scope: exactly large enough buffers");
	ok(sbx_sigv4_host_scope("ce.us-east-1.amazonaws.com", svc, 3, reg, 9) == -1, "host_scope: region buffer one short");
}

/* ---- the signer's rules ---- */

#define HDR(n, v) {n, sizeof(n) - 1, v, sizeof(v) - 1}

static const struct sbx_sigv4_header vanilla_h[] = {HDR("Host", "example.amazonaws.com"),
						    HDR("X-Amz-Date", SUITE_DATE)};
static const struct sbx_sigv4_creds suite_creds = {SUITE_AKID, SUITE_SECRET, NULL};

static struct sbx_sigv4_request vanilla(void)
{
	return (struct sbx_sigv4_request){.method = "GET",
					  .path = "/",
					  .path_len = 1,
					  .headers = vanilla_h,
					  .nheaders = 2,
					  .payload_hash = EMPTY_HASH};
}

static int sign(const struct sbx_sigv4_request *r, const struct sbx_sigv4_creds *c, const char *list, char *out,
		size_t outlen, sbx_err *err)
{
	return sbx_sigv4_sign(r, c, SUITE_DATE, "us-east-1", "service", list, out, outlen, err);
}

static int canonical(const struct sbx_sigv4_request *r, const char *list, char *out, size_t outlen)
{
	sbx_err err = SBX_ERR_INIT;
	int rc = sbx_sigv4_canonical_request(r, list, out, outlen, &err);

	if (rc < 0)
		snprintf(out, outlen, "ERROR: %s", err.msg);
	return rc;
}

/* The second line of a canonical request (the URI) or the third (the query). */
static const char *line_of(const char *s, int n, char *buf, size_t len)
{
	for (; n > 0 && s; n--) {
		s = strchr(s, '\n');
		if (s)
			s++;
	}
	if (!s)
		return "";
	size_t l = strcspn(s, "\n");
	if (l >= len)
		l = len - 1;
	memcpy(buf, s, l);
	buf[l] = '\0';
	return buf;
}

static void test_sign_basics(void)
{
	struct sbx_sigv4_request r = vanilla();
	char out[SBX_SIGV4_AUTH_MAX], out2[SBX_SIGV4_AUTH_MAX];
	sbx_err err = SBX_ERR_INIT;
	struct sbx_sigv4_creds other = {"AKIDOTHER", "another-secret", NULL};

	is_str(sign(&r, &suite_creds, "host;x-amz-date", out, sizeof(out), &err) == 0 ? out : err.msg,
	       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
	       "SignedHeaders=host;x-amz-date, Signature=" SIG64,
	       "sign: get-vanilla from literal arguments");
	ok(sign(&r, &suite_creds, "x-amz-date;host", out2, sizeof(out2), &err) == 0 && !strcmp(out, out2),
	   "sign: an unsorted list is sorted");
	ok(sign(&r, &other, "host;x-amz-date", out2, sizeof(out2), &err) == 0 &&
		   !strncmp(out2, "AWS4-HMAC-SHA256 Credential=AKIDOTHER/20150830/", 47) && strcmp(out + 100, out2 + 98),
	   "sign: other keys give another Credential and signature");
	ok(sbx_sigv4_sign(&r, &suite_creds, SUITE_DATE, "us-west-2", "service", "host;x-amz-date", out2, sizeof(out2),
			  &err) == 0 &&
		   strstr(out2, "/20150830/us-west-2/service/aws4_request") && !strstr(out2, SIG64),
	   "sign: the region is in the scope and the key");
	ok(sign(&r, &suite_creds, "host;x-amz-date", out2, strlen(out), &err) == -1 && !out2[0] &&
		   strstr(err.msg, "does not fit"),
	   "sign: an output buffer one byte short is refused");
	ok(sign(&r, &suite_creds, "host;x-amz-date", out2, strlen(out) + 1, &err) == 0 && !strcmp(out, out2),
	   "sign: an output buffer of exactly the size works");
	ok(!strstr(err.msg, SUITE_SECRET), "sign: no message carries the secret");
}

static void test_sign_token(void)
{
	struct sbx_sigv4_request r = vanilla();
	struct sbx_sigv4_header h[3] = {HDR("Host", "example.amazonaws.com"), HDR("X-Amz-Date", SUITE_DATE),
					HDR("X-Amz-Security-Token", "dummy-token-from-the-agent")};
	struct sbx_sigv4_header real[3] = {HDR("Host", "example.amazonaws.com"), HDR("X-Amz-Date", SUITE_DATE),
					   HDR("X-Amz-Security-Token", "REAL/TOKEN+=")};
	struct sbx_sigv4_creds tok = {SUITE_AKID, SUITE_SECRET, "REAL/TOKEN+="};
	struct sbx_sigv4_creds empty_tok = {SUITE_AKID, SUITE_SECRET, ""};
	struct sbx_sigv4_creds bad_tok = {SUITE_AKID, SUITE_SECRET, "a\r\nb"};
	char out[SBX_SIGV4_AUTH_MAX], want[SBX_SIGV4_AUTH_MAX], plain[SBX_SIGV4_AUTH_MAX];
	sbx_err err = SBX_ERR_INIT;

	ok(sign(&r, &tok, "host;x-amz-date", out, sizeof(out), &err) == 0 &&
		   strstr(out, "SignedHeaders=host;x-amz-date;x-amz-security-token, "),
	   "sign: a session token adds x-amz-security-token to the list");
	/* The reference: the request as forwarded, with the real token in it, over the full list. */
	r.headers = real;
	r.nheaders = 3;
	ok(sign(&r, &tok, "host;x-amz-date;x-amz-security-token", want, sizeof(want), &err) == 0 && !strcmp(out, want),
	   "sign: the added token is signed with its real value");
	r.headers = h;
	ok(sign(&r, &tok, "host;x-amz-date;x-amz-security-token", out, sizeof(out), &err) == 0 && !strcmp(out, want),
	   "sign: the agent's dummy token is replaced by the real one in the signature");
	ok(sign(&r, &suite_creds, "host;x-amz-date;x-amz-security-token", out, sizeof(out), &err) == 0 &&
		   strstr(out, "SignedHeaders=host;x-amz-date, ") &&
		   sign(&r, &suite_creds, "host;x-amz-date", plain, sizeof(plain), &err) == 0 && !strcmp(out, plain),
	   "sign: without a session token, x-amz-security-token leaves the list");
	ok(sign(&r, &empty_tok, "host;x-amz-date", out, sizeof(out), &err) == 0 && !strcmp(out, plain),
	   "sign: an empty session token is no token");
	ok(sign(&r, &bad_tok, "host;x-amz-date", out, sizeof(out), &err) == -1 && strstr(err.msg, "session token"),
	   "sign: a token with CR LF is refused");
}

static void test_sign_refusals(void)
{
	struct sbx_sigv4_request r = vanilla();
	struct sbx_sigv4_header h[4] = {HDR("Host", "example.amazonaws.com"), HDR("X-Amz-Date", SUITE_DATE),
					HDR("X-Amz-Content-SHA256", EMPTY_HASH), HDR("X-Bad", "a\r\nb")};
	struct sbx_sigv4_creds bad_akid = {"AKID/EVIL", SUITE_SECRET, NULL};
	struct sbx_sigv4_creds no_secret = {SUITE_AKID, "", NULL};
	char out[SBX_SIGV4_AUTH_MAX];
	sbx_err err = SBX_ERR_INIT;

	ok(sign(&r, &suite_creds, "host;my-header1;x-amz-date", out, sizeof(out), &err) == -1 &&
		   strstr(err.msg, "signed header my-header1 is not in the request") && !out[0],
	   "sign: a signed header missing from the request is an error");
	ok(sign(&r, &suite_creds, "x-amz-date", out, sizeof(out), &err) == -1 && strstr(err.msg, "host"),
	   "sign: a list without host is refused");
	ok(sign(&r, &suite_creds, "host;x-amz-date;host", out, sizeof(out), &err) == -1 && strstr(err.msg, "twice"),
	   "sign: a duplicate in the list is refused");
	ok(sign(&r, &suite_creds, "Host;x-amz-date", out, sizeof(out), &err) == -1 && strstr(err.msg, "lowercase"),
	   "sign: an uppercase name in the list is refused");
	ok(sign(&r, &suite_creds, "", out, sizeof(out), &err) == -1, "sign: an empty list is refused");
	ok(sbx_sigv4_sign(&r, &suite_creds, "20150830T123601Z", "us-east-1", "service", "host;x-amz-date", out,
			  sizeof(out), &err) == -1 &&
		   strstr(err.msg, "X-Amz-Date '20150830T123600Z' is not the signing time 20150830T123601Z"),
	   "sign: the request's X-Amz-Date must be the signing time");
	ok(sbx_sigv4_sign(&r, &suite_creds, "20150830T1236Z", "us-east-1", "service", "host", out, sizeof(out), &err) ==
			   -1 &&
		   strstr(err.msg, "YYYYMMDDTHHMMSSZ"),
	   "sign: a malformed signing time is refused");
	ok(sbx_sigv4_sign(&r, &suite_creds, "20150231T123600Z", "us-east-1", "service", "host", out, sizeof(out), &err) ==
		   -1,
	   "sign: an impossible signing date is refused");
	ok(sbx_sigv4_sign(&r, &suite_creds, SUITE_DATE, "us east", "service", "host", out, sizeof(out), &err) == -1 &&
		   strstr(err.msg, "region"),
	   "sign: a bad region is refused");
	ok(sbx_sigv4_sign(&r, &suite_creds, SUITE_DATE, "us-east-1", "", "host", out, sizeof(out), &err) == -1 &&
		   strstr(err.msg, "service"),
	   "sign: an empty service is refused");
	ok(sign(&r, &bad_akid, "host", out, sizeof(out), &err) == -1 && strstr(err.msg, "access key"),
	   "sign: an access key with '/' is refused");
	ok(sign(&r, &no_secret, "host", out, sizeof(out), &err) == -1 && strstr(err.msg, "secret"),
	   "sign: an empty secret is refused");

	r.headers = h;
	r.nheaders = 3;
	r.payload_hash = "UNSIGNED-PAYLOAD";
	ok(sign(&r, &suite_creds, "host", out, sizeof(out), &err) == -1 &&
		   strstr(err.msg, "X-Amz-Content-SHA256") && strstr(err.msg, "UNSIGNED-PAYLOAD"),
	   "sign: X-Amz-Content-SHA256 must be the payload hash");
	r.nheaders = 2;
	ok(sign(&r, &suite_creds, "host", out, sizeof(out), &err) == 0, "sign: UNSIGNED-PAYLOAD is accepted");
	r.payload_hash = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
	ok(sign(&r, &suite_creds, "host", out, sizeof(out), &err) == 0,
	   "sign: STREAMING-UNSIGNED-PAYLOAD-TRAILER is accepted");
	r.payload_hash = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
	ok(sign(&r, &suite_creds, "host", out, sizeof(out), &err) == -1 && err.code == SBX_E_UNSUPPORTED &&
		   strstr(err.msg, "chunk"),
	   "sign: signed streaming payloads are refused with the reason");
	r.payload_hash = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
	ok(sign(&r, &suite_creds, "host", out, sizeof(out), &err) == -1 && strstr(err.msg, "payload hash"),
	   "sign: an uppercase payload hash is refused");
	r.payload_hash = NULL;
	ok(sign(&r, &suite_creds, "host", out, sizeof(out), &err) == -1, "sign: no payload hash is refused");
	r.payload_hash = EMPTY_HASH;

	r.headers = h;
	r.nheaders = 4;
	ok(sign(&r, &suite_creds, "host;x-bad", out, sizeof(out), &err) == -1 && strstr(err.msg, "control character"),
	   "sign: a signed header value with CR LF is refused");
	ok(sign(&r, &suite_creds, "host", out, sizeof(out), &err) == 0,
	   "sign: an unsigned header's bytes do not matter");
	r.nheaders = 2;

	r.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc";
	r.query_len = strlen(r.query);
	ok(sign(&r, &suite_creds, "host", out, sizeof(out), &err) == -1 && strstr(err.msg, "presigned"),
	   "sign: a presigned query is refused");
	r.query = "a=%zz";
	r.query_len = strlen(r.query);
	ok(sign(&r, &suite_creds, "host", out, sizeof(out), &err) == -1 && strstr(err.msg, "percent-escape at '%zz'"),
	   "sign: a malformed percent-escape in the query is refused");
	r.query = "a=%4";
	r.query_len = strlen(r.query);
	ok(sign(&r, &suite_creds, "host", out, sizeof(out), &err) == -1 && strstr(err.msg, "percent-escape"),
	   "sign: a truncated percent-escape is refused");
	r.query = NULL;
	r.method = "G T";
	ok(sign(&r, &suite_creds, "host", out, sizeof(out), &err) == -1 && strstr(err.msg, "method"),
	   "sign: a method that is not a token is refused");
}

static void test_canonical_forms(void)
{
	struct sbx_sigv4_request r = vanilla();
	struct sbx_sigv4_header h[5] = {HDR("host", "example.amazonaws.com"), HDR("X-Amz-Date", SUITE_DATE),
					HDR("X-Multi", " a\t\tb  c "), HDR("x-multi", ""), HDR("X-MULTI", "\td")};
	char out[4096], line[1024];

	static const struct {
		const char *path;
		bool s3;
		const char *want;
	} paths[] = {
		{"/a/./b/../c//d/", false, "/a/c/d/"},
		{"/a/b/..", false, "/a"},
		{"/../../x", false, "/x"},
		{"/.", false, "/"},
		{"/%20/foo", false, "/%2520/foo"},
		{"/a%2Fb", false, "/a%252Fb"},
		{"/~user/(1)", false, "/~user/%281%29"},
		{"", false, "/"},
		{"/my%20key/../a//b", true, "/my%20key/../a//b"},
		{"/photos/2006/February/sample.jpg", true, "/photos/2006/February/sample.jpg"},
		{"", true, "/"},
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		r.path = paths[i].path;
		r.path_len = strlen(paths[i].path);
		r.s3_style_path = paths[i].s3;
		canonical(&r, "host", out, sizeof(out));
		is_str(line_of(out, 1, line, sizeof(line)), paths[i].want, "canonical URI%s: '%s'", paths[i].s3 ? " (s3)" : "",
		       paths[i].path);
	}
	r = vanilla();

	static const struct {
		const char *query, *want;
	} queries[] = {
		{"b=2&a=1&A=0", "A=0&a=1&b=2"},
		{"a=2&a=1&a=10", "a=1&a=10&a=2"},
		{"p", "p="},
		{"p=", "p="},
		{"=v", "=v"},
		{"a=1&&b=2&", "a=1&b=2"},
		{"&", ""},
		{"k=a+b", "k=a%2Bb"},
		{"k=a%20b&k2=%7e%7E~", "k=a%20b&k2=~~~"},
		{"k=%2f%2F/", "k=%2F%2F%2F"},
		{"k=x=y", "k=x%3Dy"},
		{"%E1%88%B4=%e1%88%b4", "%E1%88%B4=%E1%88%B4"},
		{"k=%00", "k=%00"},
		{"list-type=2&prefix=a%2Fb&delimiter=%2F", "delimiter=%2F&list-type=2&prefix=a%2Fb"},
		{"Z=1&%41=2", "A=2&Z=1"}, /* sorted by the encoded name, after decoding */
	};
	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		r.query = queries[i].query;
		r.query_len = strlen(queries[i].query);
		canonical(&r, "host", out, sizeof(out));
		is_str(line_of(out, 2, line, sizeof(line)), queries[i].want, "canonical query '%s'", queries[i].query);
	}
	r = vanilla();

	r.headers = h;
	r.nheaders = 5;
	canonical(&r, "host;x-multi", out, sizeof(out));
	is_str(line_of(out, 4, line, sizeof(line)), "x-multi:a b c,,d",
	       "canonical headers: repeated names joined in order, values trimmed and collapsed, tabs too");
	is_str(line_of(out, 3, line, sizeof(line)), "host:example.amazonaws.com", "canonical headers: name lowercased");

	/* Sizes: a buffer one byte too small is refused, never overrun; exactly enough works. */
	r = vanilla();
	canonical(&r, "host;x-amz-date", out, sizeof(out));
	{
		size_t need = strlen(out) + 1;
		char *exact = malloc(need), *small = malloc(need - 1);
		sbx_err err = SBX_ERR_INIT;

		ok(exact && small && sbx_sigv4_canonical_request(&r, "host;x-amz-date", exact, need, &err) == 0 &&
			   !strcmp(exact, out) &&
			   sbx_sigv4_canonical_request(&r, "host;x-amz-date", small, need - 1, &err) == -1 && !small[0],
		   "canonical_request: exact buffer fits, one byte less is refused");
		free(exact);
		free(small);
	}
	/* A 100 KiB query of bytes to encode grows to 300 KiB: past the cap, refused, not overrun. */
	{
		size_t n = 100 * 1024;
		char *q = malloc(n), *big = malloc(SBX_SIGV4_CANONICAL_MAX), sig[SBX_SIGV4_AUTH_MAX];
		sbx_err err = SBX_ERR_INIT;

		memset(q, '*', n);
		r.query = q;
		r.query_len = n;
		ok(big && sbx_sigv4_canonical_request(&r, "host", big, SBX_SIGV4_CANONICAL_MAX, &err) == -1 &&
			   strstr(err.msg, "does not fit"),
		   "canonical_request: an expansion past the cap is refused");
		ok(sign(&r, &suite_creds, "host", sig, sizeof(sig), &err) == -1, "sign: the same request is refused");
		memset(q, 'a', n);
		ok(sign(&r, &suite_creds, "host", sig, sizeof(sig), &err) == 0, "sign: a 100 KiB plain query is fine");
		free(q);
		free(big);
	}
}

static void test_sha256(void)
{
	char hex[65];

	sbx_sha256_hex("", 0, hex);
	is_str(hex, EMPTY_HASH, "sha256_hex of nothing");
	sbx_sha256_hex("abc", 3, hex);
	is_str(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256_hex of abc");
}

/* ---- --sign: the line protocol for the botocore cross-check ---- */

static int sign_from_stdin(void)
{
	enum { MAX_LINES = 256 };
	char *lines[MAX_LINES] = {0};
	size_t nl = 0, cap = 0;
	char *line = NULL;
	ssize_t got;
	struct sbx_sigv4_header h[MAX_HEADERS];
	struct sbx_sigv4_request r = {0};
	struct sbx_sigv4_creds c = {0};
	struct sbx_sigv4_auth auth = {0};
	const char *amz_date = NULL, *region = NULL, *service = NULL, *list = NULL;
	char out[SBX_SIGV4_AUTH_MAX];
	char *canon = NULL;
	sbx_err err = SBX_ERR_INIT;
	int rc = 2;

	while ((got = getline(&line, &cap, stdin)) >= 0) {
		char *v;

		if (got > 0 && line[got - 1] == '\n')
			line[--got] = '\0';
		if (nl == MAX_LINES || !(v = strchr(line, ' '))) {
			fprintf(stderr, "test_sigv4 --sign: bad line '%s' (expected 'KEY VALUE', at most %d)\n", line,
				MAX_LINES);
			goto out;
		}
		/* every line stays alive until the end: the request points into them */
		lines[nl++] = line;
		line = NULL;
		cap = 0;
		*v++ = '\0';
		if (!strcmp(lines[nl - 1], "authorization")) {
			if (sbx_sigv4_parse_auth(v, strlen(v), &auth, &err) < 0) {
				fprintf(stderr, "test_sigv4 --sign: %s\n", err.msg);
				rc = 1;
				goto out;
			}
			region = auth.region;
			service = auth.service;
			list = auth.signed_headers;
		} else if (!strcmp(lines[nl - 1], "method")) {
			r.method = v;
		} else if (!strcmp(lines[nl - 1], "path")) {
			r.path = v;
			r.path_len = strlen(v);
		} else if (!strcmp(lines[nl - 1], "query")) {
			r.query = v;
			r.query_len = strlen(v);
		} else if (!strcmp(lines[nl - 1], "header")) {
			char *colon = strchr(v, ':');
			if (!colon || r.nheaders == MAX_HEADERS) {
				fprintf(stderr, "test_sigv4 --sign: bad header line '%s'\n", v);
				goto out;
			}
			h[r.nheaders++] = (struct sbx_sigv4_header){v, (size_t)(colon - v), colon + 1, strlen(colon + 1)};
		} else if (!strcmp(lines[nl - 1], "payload")) {
			r.payload_hash = v;
		} else if (!strcmp(lines[nl - 1], "access_key")) {
			c.access_key = v;
		} else if (!strcmp(lines[nl - 1], "secret_key")) {
			c.secret_key = v;
		} else if (!strcmp(lines[nl - 1], "session_token")) {
			c.session_token = v;
		} else if (!strcmp(lines[nl - 1], "amz_date")) {
			amz_date = v;
		} else if (!strcmp(lines[nl - 1], "region")) {
			region = v;
		} else if (!strcmp(lines[nl - 1], "service")) {
			service = v;
		} else if (!strcmp(lines[nl - 1], "signed_headers")) {
			list = v;
		} else if (!strcmp(lines[nl - 1], "s3")) {
			r.s3_style_path = !strcmp(v, "1");
		} else {
			fprintf(stderr, "test_sigv4 --sign: unknown key '%s'\n", lines[nl - 1]);
			goto out;
		}
	}
	r.headers = h;
	if (!r.method || !r.path || !c.access_key || !c.secret_key || !amz_date || !list) {
		fprintf(stderr, "test_sigv4 --sign: need method, path, access_key, secret_key, amz_date and "
				"authorization (or signed_headers, region, service)\n");
		goto out;
	}
	if (sbx_sigv4_sign(&r, &c, amz_date, region, service, list, out, sizeof(out), &err) < 0) {
		fprintf(stderr, "test_sigv4 --sign: %s\n", err.msg);
		rc = 1;
		goto out;
	}
	printf("%s\n", out);
	/* For diagnostics: the canonical request over the list that was signed. */
	canon = malloc(SBX_SIGV4_CANONICAL_MAX);
	if (canon && sbx_sigv4_parse_auth(out, strlen(out), &auth, &err) == 0 &&
	    sbx_sigv4_canonical_request(&r, auth.signed_headers, canon, SBX_SIGV4_CANONICAL_MAX, &err) == 0)
		printf("%s\n", canon);
	rc = 0;
out:
	free(line);
	free(canon);
	for (size_t i = 0; i < nl; i++)
		free(lines[i]);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--sign"))
		return sign_from_stdin();
	test_vectors(argc > 1 ? argv[1] : "tests/unit/sigv4");
	test_parse_valid();
	test_parse_malformed();
	test_parse_limits();
	test_presigned();
	test_host_scope();
	test_sign_basics();
	test_sign_token();
	test_sign_refusals();
	test_canonical_forms();
	test_sha256();
	return done_testing();
}
