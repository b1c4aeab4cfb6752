/* credinject.c - credentials into intercepted requests, and out of responses (credinject.h). */
#include "credinject.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sigv4.h"
#include "util.h"

bool sbx_host_pattern_match(const char *pattern, const char *host)
{
	size_t pl, hl = strlen(host);

	if (strncmp(pattern, "**.", 3) == 0) {
		pl = strlen(pattern + 2); /* ".suffix" */
		return hl > pl && strcmp(host + hl - pl, pattern + 2) == 0;
	}
	if (strncmp(pattern, "*.", 2) == 0) {
		pl = strlen(pattern + 1);
		return hl > pl && strcmp(host + hl - pl, pattern + 1) == 0 && !memchr(host, '.', hl - pl);
	}
	return strcmp(pattern, host) == 0;
}

void sbx_cred_clear(struct sbx_cred *c)
{
	if (c->value) {
		OPENSSL_cleanse(c->value, strlen(c->value));
		free(c->value);
	}
	memset(c, 0, sizeof(*c));
}

static bool service_covers(const struct sbx_service *svc, const char *host)
{
	for (size_t i = 0; i < SBX_SERVICE_MAX_HOSTS && svc->hosts[i]; i++)
		if (sbx_host_pattern_match(svc->hosts[i], host))
			return true;
	return false;
}

/* *.execute-api.*.amazonaws.com (API Gateway) and *.lambda-url.* hosts are anyone's APIs: the
 * account's signed requests and session token do not go there. */
static bool aws_host_ok(const struct sbx_service *svc, const char *host)
{
	return svc->kind != SBX_INJECT_SIGV4 || (!strstr(host, ".execute-api.") && !strstr(host, ".lambda-url."));
}

static int take(struct sbx_cred *out, const struct sbx_secret *sec, enum sbx_inject_kind kind, const char *service,
		const char *header, const char *format)
{
	memset(out, 0, sizeof(*out));
	out->kind = kind;
	sbx_strlcpy(out->service, service, sizeof(out->service));
	sbx_strlcpy(out->header, header ? header : "Authorization", sizeof(out->header));
	sbx_strlcpy(out->format, format ? format : "%s", sizeof(out->format));
	if (!(out->value = strdup(sec->value)))
		return -1;
	return 0;
}

int sbx_cred_for_host(struct sbx_store *st, const char *sandbox_name, const char *sandbox_id, const char *host,
		      struct sbx_cred *out, sbx_err *err)
{
	size_t n;
	const struct sbx_service *svcs = sbx_services(&n);
	struct sbx_secret sec;
	struct sbx_secret *list = NULL;
	size_t nlist = 0;
	int found = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n && !found; i++) {
		const struct sbx_service *svc = &svcs[i];
		int r;
		if (!service_covers(svc, host) || !aws_host_ok(svc, host))
			continue;
		memset(&sec, 0, sizeof(sec));
		r = sbx_secret_get(st, svc->name, sandbox_name, &sec, err);
		if (r < 0)
			return -1;
		if (r == 0)
			continue;
		if (take(out, &sec, svc->kind, svc->name, svc->header, svc->format) < 0) {
			sbx_secret_clear(&sec);
			return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
		}
		sbx_secret_clear(&sec);
		sbx_secret_placeholder(svc, sandbox_id, out->placeholder, sizeof(out->placeholder));
		if (svc->kind == SBX_INJECT_SIGV4 && svc->sandbox_env[1])
			/* the dummy secret key the sandbox holds next to its dummy key id */
			sbx_secret_placeholder_env(svc, svc->sandbox_env[1], sandbox_id, out->placeholder2,
						   sizeof(out->placeholder2));
		found = 1;
	}
	if (found)
		return 1;
	/* Custom secrets: their own hosts, header and format. */
	if (sbx_secret_list(st, &list, &nlist, err) < 0)
		return -1;
	for (size_t i = 0; i < nlist && !found; i++) {
		bool covers = false;
		if (!list[i].custom || (list[i].sandbox[0] && strcmp(list[i].sandbox, sandbox_name) != 0))
			continue;
		for (size_t h = 0; h < list[i].nhosts && !covers; h++)
			covers = sbx_host_pattern_match(list[i].hosts[h], host);
		if (!covers)
			continue;
		memset(&sec, 0, sizeof(sec));
		if (sbx_secret_get(st, list[i].name, sandbox_name, &sec, err) <= 0) {
			sbx_secrets_free(list, nlist);
			return -1;
		}
		/* The row that applies (the sandbox's over the global one) defines hosts, header and
		 * format too: its value goes only where it says. */
		covers = false;
		for (size_t h = 0; h < sec.nhosts && !covers; h++)
			covers = sbx_host_pattern_match(sec.hosts[h], host);
		if (!covers) {
			sbx_secret_clear(&sec);
			continue;
		}
		if (take(out, &sec, SBX_INJECT_HEADER, sec.name, sec.header, sec.format) < 0) {
			sbx_secret_clear(&sec);
			sbx_secrets_free(list, nlist);
			return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
		}
		sbx_secret_clear(&sec);
		sbx_strlcpy(out->placeholder, "proxy-managed", sizeof(out->placeholder));
		found = 1;
	}
	sbx_secrets_free(list, nlist);
	return found;
}

static const char *env_lookup(void *ud, const char *name)
{
	return json_string_value(json_object_get((const json_t *)ud, name));
}

int sbx_cred_for_host_env(const struct json_t *env, const char *sandbox_id, const char *host, struct sbx_cred *out,
			  sbx_err *err)
{
	size_t n;
	const struct sbx_service *svcs = sbx_services(&n);

	memset(out, 0, sizeof(*out));
	if (!env)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct sbx_service *svc = &svcs[i];
		char *value = NULL;
		int r;
		if (!service_covers(svc, host) || !aws_host_ok(svc, host))
			continue;
		r = sbx_service_host_value(svc, env_lookup, (void *)env, &value, err);
		if (r < 0)
			return -1;
		if (r == 0)
			continue;
		out->kind = svc->kind;
		sbx_strlcpy(out->service, svc->name, sizeof(out->service));
		sbx_strlcpy(out->header, svc->header ? svc->header : "Authorization", sizeof(out->header));
		sbx_strlcpy(out->format, svc->format ? svc->format : "%s", sizeof(out->format));
		out->value = value;
		sbx_secret_placeholder(svc, sandbox_id, out->placeholder, sizeof(out->placeholder));
		if (svc->kind == SBX_INJECT_SIGV4 && svc->sandbox_env[1])
			sbx_secret_placeholder_env(svc, svc->sandbox_env[1], sandbox_id, out->placeholder2,
						   sizeof(out->placeholder2));
		return 1;
	}
	return 0;
}

bool sbx_cred_service_available(struct sbx_store *st, const struct json_t *env, const struct sbx_service *svc,
				const char *sandbox_name)
{
	struct sbx_secret sec;
	char *value = NULL;
	int r;

	memset(&sec, 0, sizeof(sec));
	if (sbx_secret_get(st, svc->name, sandbox_name, &sec, NULL) > 0) {
		sbx_secret_clear(&sec);
		return true;
	}
	if (!env)
		return false;
	r = sbx_service_host_value(svc, env_lookup, (void *)env, &value, NULL);
	if (value) {
		OPENSSL_cleanse(value, strlen(value));
		free(value);
	}
	return r > 0;
}

/* format with its one "%s" replaced by value - never through printf: the format is the user's. */
static int append_formatted(sbx_buf *out, const char *format, const char *value)
{
	const char *p = strstr(format, "%s");

	if (!p)
		return sbx_buf_append_str(out, value);
	if (sbx_buf_append(out, format, (size_t)(p - format)) < 0 || sbx_buf_append_str(out, value) < 0)
		return -1;
	return sbx_buf_append_str(out, p + 2);
}

/* value with every occurrence of `from` replaced by `to`. */
static int append_replaced(sbx_buf *out, const char *v, size_t vl, const char *from, const char *to)
{
	size_t fl = strlen(from);

	if (fl == 0)
		return sbx_buf_append(out, v, vl);
	while (vl > 0) {
		const char *hit = memmem(v, vl, from, fl);
		if (!hit)
			return sbx_buf_append(out, v, vl);
		if (sbx_buf_append(out, v, (size_t)(hit - v)) < 0 || sbx_buf_append_str(out, to) < 0)
			return -1;
		vl -= (size_t)(hit - v) + fl;
		v = hit + fl;
	}
	return 0;
}

static bool name_is(struct sbx_http_str n, const char *lit)
{
	return strlen(lit) == n.len && strncasecmp(n.p, lit, n.len) == 0;
}

int sbx_cred_apply_headers(const struct sbx_cred *c, const char *host, const struct sbx_http_msg *m,
			   bool (*skip)(void *ud, struct sbx_http_str name), void *ud, sbx_buf *out)
{
	bool have = false;
	bool git_basic = c && c->kind == SBX_INJECT_GIT && strcmp(host, "api.github.com") != 0;
	char basic[1024];

	if (git_basic) {
		/* git smart-HTTP: Basic x-access-token:TOKEN, what GitHub documents for tokens */
		char raw[700];
		int n = snprintf(raw, sizeof(raw), "x-access-token:%s", c->value);
		if (n < 0 || (size_t)n >= sizeof(raw))
			return -1;
		memcpy(basic, "Basic ", 6);
		EVP_EncodeBlock((unsigned char *)basic + 6, (const unsigned char *)raw, n);
	}
	for (size_t i = 0; i < m->nheaders; i++) {
		const struct sbx_http_header *h = &m->headers[i];
		if (skip && skip(ud, h->name))
			continue;
		/* A response that echoes the secret must come back in clear to be scrubbed. */
		if (c && c->kind != SBX_INJECT_SIGV4 && name_is(h->name, "accept-encoding"))
			continue;
		if (sbx_buf_append(out, h->name.p, h->name.len) < 0 || sbx_buf_append_str(out, ": ") < 0)
			return -1;
		if (c && c->kind != SBX_INJECT_SIGV4 && name_is(h->name, c->header)) {
			/* the service's own header carries the secret, whatever the sandbox put there */
			have = true;
			if ((git_basic ? sbx_buf_append_str(out, basic) : append_formatted(out, c->format, c->value)) < 0)
				return -1;
		} else if (c && c->kind != SBX_INJECT_SIGV4 && c->placeholder[0]) {
			if (append_replaced(out, h->value.p, h->value.len, c->placeholder, c->value) < 0)
				return -1;
		} else if (sbx_buf_append(out, h->value.p, h->value.len) < 0) {
			return -1;
		}
		if (sbx_buf_append_str(out, "\r\n") < 0)
			return -1;
	}
	if (c && c->kind != SBX_INJECT_SIGV4 && sbx_buf_append_str(out, "Accept-Encoding: identity\r\n") < 0)
		return -1;
	if (c && c->kind != SBX_INJECT_SIGV4 && !have) {
		if (sbx_buf_append_str(out, c->header) < 0 || sbx_buf_append_str(out, ": ") < 0 ||
		    (git_basic ? sbx_buf_append_str(out, basic) : append_formatted(out, c->format, c->value)) < 0 ||
		    sbx_buf_append_str(out, "\r\n") < 0)
			return -1;
	}
	return 0;
}

static size_t mask_all(char *buf, size_t len, const char *needle, size_t nl)
{
	size_t count = 0;
	char *p = buf;

	if (nl < 4) /* too short to be a secret worth masking, and would mask noise */
		return 0;
	while ((size_t)(p - buf) + nl <= len) {
		char *hit = memmem(p, len - (size_t)(p - buf), needle, nl);
		if (!hit)
			break;
		memset(hit, '*', nl);
		p = hit + nl;
		count++;
	}
	return count;
}

size_t sbx_cred_scrub(const struct sbx_cred *c, char *buf, size_t len)
{
	size_t count = 0;

	if (!c || !c->value)
		return 0;
	if (c->kind == SBX_INJECT_SIGV4) {
		/* each part of "AKID:SECRET[:TOKEN]" except the key id, which is not secret */
		const char *part = strchr(c->value, ':');
		while (part) {
			const char *next = strchr(part + 1, ':');
			size_t pl = next ? (size_t)(next - part - 1) : strlen(part + 1);
			count += mask_all(buf, len, part + 1, pl);
			part = next;
		}
		return count;
	}
	return mask_all(buf, len, c->value, strlen(c->value));
}

size_t sbx_cred_scrub_window(const struct sbx_cred *c)
{
	return c && c->value ? strlen(c->value) : 0;
}

/* The longest k < nl such that buf ends with needle[0..k). */
static size_t partial(const char *buf, size_t len, const char *needle, size_t nl)
{
	for (size_t k = nl - 1 < len ? nl - 1 : len; k > 0; k--)
		if (memcmp(buf + len - k, needle, k) == 0)
			return k;
	return 0;
}

size_t sbx_cred_partial_tail(const struct sbx_cred *c, const char *buf, size_t len)
{
	size_t best = 0;

	if (!c || !c->value || !*c->value)
		return 0;
	if (c->kind == SBX_INJECT_SIGV4) {
		for (const char *part = strchr(c->value, ':'); part; part = strchr(part + 1, ':')) {
			const char *next = strchr(part + 1, ':');
			size_t pl = next ? (size_t)(next - part - 1) : strlen(part + 1), k;
			if (pl && (k = partial(buf, len, part + 1, pl)) > best)
				best = k;
		}
		return best;
	}
	return partial(buf, len, c->value, strlen(c->value));
}

static const struct sbx_http_str *find_header(const struct sbx_http_msg *m, const char *name)
{
	return sbx_http_header_get(m, name);
}

bool sbx_cred_sigv4_needs_body(const struct sbx_http_msg *m)
{
	return !find_header(m, "x-amz-content-sha256") && find_header(m, "authorization");
}

int sbx_cred_sigv4_headers(const struct sbx_cred *c, const struct sbx_http_msg *m, const char *authority,
			   const char *origin, const char *body, size_t body_len,
			   bool (*skip)(void *ud, struct sbx_http_str name), void *ud, sbx_buf *out, sbx_err *err)
{
	const struct sbx_http_str *auth = find_header(m, "authorization");
	const struct sbx_http_str *csha = find_header(m, "x-amz-content-sha256");
	const struct sbx_http_str *date = find_header(m, "x-amz-date");
	const char *q = strchr(origin, '?');
	struct sbx_sigv4_auth a;
	struct sbx_sigv4_header hs[SBX_HTTP_MAX_HEADERS + 2];
	size_t nh = 0;
	char akid[256], secret[512], payload[80], amz_date[32], authz[SBX_SIGV4_AUTH_MAX];
	static char token[16385]; /* the store allows 16 KiB; single-threaded (the proxy's loop) */
	const char *c1, *c2;
	struct sbx_sigv4_request req;
	struct sbx_sigv4_creds cr;
	bool have_token;

	if (q && sbx_sigv4_is_presigned(q + 1, strlen(q + 1)))
		return sbx_err_set(err, SBX_E_UNSUPPORTED,
				   "presigned AWS URLs made inside the sandbox carry the sandbox's dummy keys and cannot be "
				   "re-signed; create presigned URLs outside the sandbox");
	if (!auth || auth->len >= SBX_SIGV4_AUTH_MAX || sbx_sigv4_parse_auth(auth->p, auth->len, &a, NULL) < 0 ||
	    strcmp(a.access_key, c->placeholder) != 0)
		return sbx_cred_apply_headers(NULL, "", m, skip, ud, out); /* not ours to sign */
	/* Signed aws-chunked uploads chain each chunk's signature to the header's: they cannot be
	 * re-signed in passing. (STREAMING-UNSIGNED-PAYLOAD-TRAILER, what current SDKs use for S3
	 * over HTTPS, signs no chunk and goes through.) */
	if (csha && csha->len >= 26 && strncasecmp(csha->p, "STREAMING-AWS4-HMAC-SHA256", 26) == 0)
		return sbx_err_set(err, SBX_E_UNSUPPORTED,
				   "signed aws-chunked streaming uploads cannot be re-signed by the sbx proxy; configure the "
				   "client to send the payload unsigned (UNSIGNED-PAYLOAD) or in one piece");
	if (!date || date->len >= sizeof(amz_date))
		return sbx_err_set(err, SBX_E_INVALID, "the AWS request has no X-Amz-Date header");
	memcpy(amz_date, date->p, date->len);
	amz_date[date->len] = '\0';
	if (csha) {
		if (csha->len >= sizeof(payload))
			return sbx_err_set(err, SBX_E_INVALID, "x-amz-content-sha256 is malformed");
		memcpy(payload, csha->p, csha->len);
		payload[csha->len] = '\0';
	} else {
		sbx_sha256_hex(body ? body : "", body ? body_len : 0, payload);
	}
	/* the real keys */
	c1 = strchr(c->value, ':');
	if (!c1 || (size_t)(c1 - c->value) >= sizeof(akid))
		return sbx_err_set(err, SBX_E_INVALID, "the stored aws secret is malformed: use AKID:SECRET[:TOKEN]");
	memcpy(akid, c->value, (size_t)(c1 - c->value));
	akid[c1 - c->value] = '\0';
	c2 = strchr(c1 + 1, ':');
	if ((c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1)) >= sizeof(secret) || (c2 && strlen(c2 + 1) >= sizeof(token)))
		return sbx_err_set(err, SBX_E_INVALID, "the stored aws secret or session token is too long");
	snprintf(secret, sizeof(secret), "%.*s", (int)(c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1)), c1 + 1);
	snprintf(token, sizeof(token), "%s", c2 ? c2 + 1 : "");
	have_token = token[0] != '\0';

	/* The headers as they will go out: the request's (minus hop-by-hop, the agent's
	 * Authorization and its dummy session token), Host as sent, the real session token. */
	hs[nh++] = (struct sbx_sigv4_header){"host", 4, authority, strlen(authority)};
	for (size_t i = 0; i < m->nheaders; i++) {
		const struct sbx_http_header *h = &m->headers[i];
		if ((skip && skip(ud, h->name)) || sbx_http_str_ieq(h->name, "authorization") ||
		    sbx_http_str_ieq(h->name, "x-amz-security-token"))
			continue;
		hs[nh++] = (struct sbx_sigv4_header){h->name.p, h->name.len, h->value.p, h->value.len};
	}
	if (have_token)
		hs[nh++] = (struct sbx_sigv4_header){"x-amz-security-token", 20, token, strlen(token)};
	{
		/* the signed list: the agent's, without a session token we do not send */
		char list[sizeof(a.signed_headers)], *o = list;
		const char *p = a.signed_headers;
		*o = '\0';
		while (*p) {
			size_t l = strcspn(p, ";");
			if (!(l == 20 && strncmp(p, "x-amz-security-token", 20) == 0 && !have_token)) {
				if (o != list)
					*o++ = ';';
				memcpy(o, p, l);
				o += l;
				*o = '\0';
			}
			p += l + (p[l] == ';');
		}
		memset(&req, 0, sizeof(req));
		req.method = NULL;
		memcpy(a.signed_headers, list, strlen(list) + 1);
	}
	{
		char method[32];
		snprintf(method, sizeof(method), "%.*s", (int)m->method.len, m->method.p);
		req.method = method;
		req.path = origin;
		req.path_len = q ? (size_t)(q - origin) : strlen(origin);
		req.query = q ? q + 1 : NULL;
		req.query_len = q ? strlen(q + 1) : 0;
		req.headers = hs;
		req.nheaders = nh;
		req.payload_hash = payload;
		req.s3_style_path = strcmp(a.service, "s3") == 0;
		cr.access_key = akid;
		cr.secret_key = secret;
		cr.session_token = have_token ? token : NULL;
		if (sbx_sigv4_sign(&req, &cr, amz_date, a.region, a.service, a.signed_headers, authz, sizeof(authz), err) < 0) {
			OPENSSL_cleanse(secret, sizeof(secret));
			OPENSSL_cleanse(token, sizeof(token));
			return -1;
		}
	}
	OPENSSL_cleanse(secret, sizeof(secret));
	/* the token is still needed below (it goes out as a header), wiped after */
	for (size_t i = 1; i < nh; i++) /* hs[0] is Host, written by the caller */
		if (sbx_buf_append(out, hs[i].name, hs[i].name_len) < 0 || sbx_buf_append_str(out, ": ") < 0 ||
		    sbx_buf_append(out, hs[i].value, hs[i].value_len) < 0 || sbx_buf_append_str(out, "\r\n") < 0) {
			OPENSSL_cleanse(token, sizeof(token));
			return sbx_err_set(err, SBX_E_INVALID, "request head too large");
		}
	OPENSSL_cleanse(token, sizeof(token));
	if (sbx_buf_printf(out, "Authorization: %s\r\n", authz) < 0)
		return sbx_err_set(err, SBX_E_INVALID, "request head too large");
	return 0;
}
