/* test_classify.c - the review queue's built-in classifiers (src/daemon/classify.c).
 *
 *   test_classify               TAP
 *   test_classify --seeds DIR   writes the fuzz seeds (fuzz/corpus/classify) built from the same
 *                               requests, real git pushes included, and exits
 *
 * AWS: every place an action is written (X-Amz-Target, Action= in the URL and in a form body with
 * its encodings, RPC v2 paths), ambiguity, REST DELETE and S3's ?policy / ?delete, hosts that are
 * and are not AWS, MORE against complete against the cap. git: request bodies made the way git
 * makes them - a pack from `git pack-objects --stdout --thin --revs` behind pkt-lines written
 * here - for fast-forwards (plain, merges, deltified commits, SHA-256), force pushes, deletes,
 * creations, several refs, truncation, the cap and garbage; then packs crafted byte by byte to
 * reach the delta applier's and the pack reader's error paths. Each git case is also fed prefix
 * by prefix: a verdict reached on a prefix must hold for every longer one. */
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "daemon/classify.h"
#include "tap.h"
#include "util.h"

#define CAP SBX_CLASSIFY_BODY_MAX
#define ZERO40 "0000000000000000000000000000000000000000"
#define ZERO64 ZERO40 "000000000000000000000000"
#define CAPS1 "report-status side-band-64k quiet object-format=sha1 agent=git/2.39.5"
#define CAPS256 "report-status side-band-64k quiet object-format=sha256 agent=git/2.39.5"
#define PUSH_HEADERS "Content-Type: application/x-git-receive-pack-request\r\nTransfer-Encoding: chunked\r\n"

static char tmpdir[PATH_MAX];
static const char *seed_dir; /* --seeds: where to write */

/* ---- a growable byte buffer ---- */

struct body {
	uint8_t *p;
	size_t len, cap;
};

static void b_add(struct body *b, const void *d, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t c = b->cap ? b->cap : 256;

		while (c < b->len + n + 1)
			c *= 2;
		b->p = realloc(b->p, c);
		if (!b->p) {
			printf("Bail out! out of memory\n");
			exit(1);
		}
		b->cap = c;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void b_str(struct body *b, const char *s)
{
	b_add(b, s, strlen(s));
}

static void b_free(struct body *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void b_pkt(struct body *b, const void *d, size_t n)
{
	char len[5];

	snprintf(len, sizeof(len), "%04zx", n + 4);
	b_add(b, len, 4);
	b_add(b, d, n);
}

static void b_flush(struct body *b)
{
	b_add(b, "0000", 4);
}

/* One command pkt-line as send-pack writes it: "old new ref" and, on the first, NUL + caps. */
static void b_cmd(struct body *b, const char *old, const char *new_, const char *ref, const char *caps)
{
	struct body line = {0};

	b_str(&line, old);
	b_str(&line, " ");
	b_str(&line, new_);
	b_str(&line, " ");
	b_str(&line, ref);
	if (caps) {
		b_add(&line, "", 1);
		b_str(&line, caps);
	}
	b_pkt(b, line.p, line.len);
	b_free(&line);
}

/* ---- running git ---- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		diag("command failed (%d): %s", rc, cmd);
	return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* The first line a command prints. */
static void capture(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void capture(char *out, size_t cap, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	out[0] = '\0';
	f = popen(cmd, "r");
	if (!f)
		return;
	if (!fgets(out, (int)cap, f))
		out[0] = '\0';
	pclose(f);
	out[strcspn(out, "\n")] = '\0';
}

static int slurp_into(struct body *b, const char *path)
{
	char buf[65536];
	size_t n;
	FILE *f = fopen(path, "rb");

	if (!f)
		return -1;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		b_add(b, buf, n);
	fclose(f);
	return 0;
}

/* Appends `git pack-objects --stdout --thin --revs FLAGS` of the rev list revs (lines). */
static void b_pack(struct body *b, const char *repo, const char *revs, const char *flags)
{
	char path[PATH_MAX + 32], rpath[PATH_MAX + 32];
	FILE *f;

	snprintf(rpath, sizeof(rpath), "%s/revs.txt", tmpdir);
	snprintf(path, sizeof(path), "%s/pack.bin", tmpdir);
	f = fopen(rpath, "w");
	if (!f || fputs(revs, f) < 0 || fclose(f) != 0) {
		printf("Bail out! cannot write %s\n", rpath);
		exit(1);
	}
	if (sh("cd '%s' && git pack-objects --stdout --thin --revs -q %s < '%s' > '%s'", repo, flags, rpath, path) != 0 ||
	    slurp_into(b, path) < 0) {
		printf("Bail out! git pack-objects failed\n");
		exit(1);
	}
}

/* ---- requests ---- */

struct rq {
	char raw[4096];
	struct sbx_http_msg msg;
	char host[256], method[33], target[2048];
	struct sbx_classify_input in;
};

static struct rq *mkreq(const char *method, const char *host, const char *target, const char *headers)
{
	static struct rq q;
	struct sbx_http_error err;
	int n;

	memset(&q, 0, sizeof(q));
	n = snprintf(q.raw, sizeof(q.raw), "%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", method, target,
		     host[0] ? host : "192.0.2.1", headers);
	if (sbx_http_parse_request(q.raw, (size_t)n, &q.msg, &err) != SBX_HTTP_OK) {
		printf("Bail out! test request does not parse: %s\n%s", err.reason, q.raw);
		exit(1);
	}
	sbx_strlcpy(q.host, host, sizeof(q.host));
	sbx_strlcpy(q.method, method, sizeof(q.method));
	sbx_strlcpy(q.target, target, sizeof(q.target));
	q.in = (struct sbx_classify_input){q.host, q.method, q.target, &q.msg, NULL, 0, true};
	return &q;
}

/* Writes a fuzz seed: a flags byte (0: all classifiers), the head, the body. */
static void seed(const char *name, const struct rq *q, const void *body, size_t len)
{
	char path[PATH_MAX + 64];
	FILE *f;

	if (!seed_dir)
		return;
	snprintf(path, sizeof(path), "%s/%s", seed_dir, name);
	f = fopen(path, "wb");
	if (!f || fputc(0, f) == EOF || fwrite(q->raw, 1, strlen(q->raw), f) != strlen(q->raw) ||
	    (len && fwrite(body, 1, len, f) != len) || fclose(f) != 0) {
		printf("Bail out! cannot write seed %s\n", path);
		exit(1);
	}
}

static enum sbx_classify_verdict cls(struct rq *q, const void *body, size_t len, bool complete, unsigned enabled,
				     struct sbx_classify_result *res)
{
	q->in.body = body;
	q->in.body_len = len;
	q->in.body_complete = complete;
	sbx_classify(&q->in, enabled, res);
	return res->verdict;
}

static const char *vname(enum sbx_classify_verdict v)
{
	return v == SBX_CLASSIFY_PASS ? "PASS" : v == SBX_CLASSIFY_HOLD ? "HOLD" : v == SBX_CLASSIFY_MORE ? "MORE" : "?";
}

/* One complete request: the verdict and, on HOLD, the action (NULL: any). */
static void expectn(const char *name, struct rq *q, const void *body, size_t len, unsigned enabled,
		    enum sbx_classify_verdict want, const char *action)
{
	struct sbx_classify_result r;
	enum sbx_classify_verdict v = cls(q, body, len, true, enabled, &r);
	bool good = v == want && (want != SBX_CLASSIFY_HOLD || (r.reason[0] && r.action[0])) &&
		    (!action || !strcmp(r.action, action));

	if (!ok(good, "%s: %s%s%s", name, vname(want), action ? " " : "", action ? action : ""))
		diag("got %s action '%s' reason '%s'", vname(v), r.action, r.reason);
}

static void expect(const char *name, struct rq *q, const char *body, unsigned enabled, enum sbx_classify_verdict want,
		   const char *action)
{
	expectn(name, q, body, body ? strlen(body) : 0, enabled, want, action);
}

/* ---- names ---- */

static void test_names(void)
{
	enum sbx_classifier c = SBX_CLS_COUNT;

	is_str(sbx_classifier_name(SBX_CLS_AWS), "aws-destructive", "name: aws");
	is_str(sbx_classifier_name(SBX_CLS_HTTP_DELETE), "http-delete", "name: http-delete");
	is_str(sbx_classifier_name(SBX_CLS_GIT_PUSH), "git-force-push", "name: git");
	ok(sbx_classifier_name(SBX_CLS_COUNT) == NULL && sbx_classifier_summary(SBX_CLS_COUNT) == NULL,
	   "name/summary: out of range is NULL");
	for (int i = 0; i < SBX_CLS_COUNT; i++) {
		const char *s = sbx_classifier_summary((enum sbx_classifier)i);

		ok(s && strlen(s) > 20 && !strchr(s, '\n'), "summary %d is one line: %s", i, s ? s : "(null)");
		ok(sbx_classifier_parse(sbx_classifier_name((enum sbx_classifier)i), &c) == 0 && c == (enum sbx_classifier)i,
		   "parse(name(%d)) round-trips", i);
	}
	ok(sbx_classifier_parse("aws", &c) == -1 && sbx_classifier_parse("", &c) == -1 &&
	       sbx_classifier_parse(NULL, &c) == -1 && sbx_classifier_parse("HTTP-DELETE", &c) == -1,
	   "parse: unknown names are refused");
	is_int(SBX_CLS_ALL, 7, "SBX_CLS_ALL has one bit per classifier");
}

/* ---- aws-destructive ---- */

static void test_aws_json(void)
{
	const unsigned A = 1u << SBX_CLS_AWS;
	static const struct {
		const char *target;
		const char *action; /* NULL: PASS */
	} cases[] = {
		{"DynamoDB_20120810.DeleteTable", "DeleteTable"},
		{"AWSInsightsIndexService.GetCostAndUsage", NULL},
		{"Logs_20140328.DescribeLogGroups", NULL},
		{"AmazonEC2ContainerServiceV20141113.UpdateService", NULL},
		{"AWSCognitoIdentityProviderService.AdminDeleteUser", NULL}, /* the globs anchor at the start */
		{"TrentService.ScheduleKeyDeletion", NULL},
		{"AmazonSSM.DeleteParameter", "DeleteParameter"},
		{"Kinesis_20131202.RemoveTagsFromStream", "RemoveTagsFromStream"},
		{"AWSOrganizationsV20161128.DetachPolicy", "DetachPolicy"},
		{"X.RevokeSecurityGroupIngress", "RevokeSecurityGroupIngress"},
		{"X.TerminateInstances", "TerminateInstances"},
		{"secretsmanager.PutResourcePolicy", "PutResourcePolicy"},
		{"X.PutPolicy", "PutPolicy"},
		{"X.PutRetentionPolicy", "PutRetentionPolicy"},
		{"X.PutBucketPolicyStatus", NULL},
		{"X.UpdateStack", "UpdateStack"},
		{"X.UpdateTerminationProtectionStack", "UpdateTerminationProtectionStack"},
		{"X.UpdateStackSet", NULL},
		{"X.CreateStack", NULL},
		{"X.deleteTable", NULL}, /* PascalCase, as AWS spells actions */
		{"DeleteTable", "DeleteTable"}, /* no '.': the whole value */
		{"a.b.c.DeleteThing", "DeleteThing"}, /* after the last '.' */
		{"X.Delete", "Delete"},
		{"", NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char h[256], name[128];
		struct rq *q;

		snprintf(h, sizeof(h), "X-Amz-Target: %s\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\n",
			 cases[i].target);
		q = mkreq("POST", "dynamodb.us-east-1.amazonaws.com", "/", h);
		snprintf(name, sizeof(name), "aws json: X-Amz-Target %s", cases[i].target);
		expect(name, q, "{}", A, cases[i].action ? SBX_CLASSIFY_HOLD : SBX_CLASSIFY_PASS, cases[i].action);
		if (i == 0) {
			struct sbx_classify_result r;

			cls(q, "{}", 2, true, SBX_CLS_ALL, &r);
			ok(r.which == SBX_CLS_AWS && strstr(r.reason, "DeleteTable") && strstr(r.reason, "X-Amz-Target"),
			   "aws json: the reason names the action and where it was found: %s", r.reason);
			seed("aws-json-delete", q, "{}", 2);
		}
	}

	expect("aws json: two X-Amz-Target headers are ambiguous",
	       mkreq("POST", "dynamodb.us-east-1.amazonaws.com", "/",
		     "X-Amz-Target: DynamoDB_20120810.ListTables\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\n"
		     "Content-Length: 2\r\n"),
	       "{}", A, SBX_CLASSIFY_HOLD, "aws:ambiguous-action");
	expect("aws json: a list in X-Amz-Target is ambiguous",
	       mkreq("POST", "dynamodb.us-east-1.amazonaws.com", "/",
		     "X-Amz-Target: DynamoDB_20120810.DeleteTable, DynamoDB_20120810.ListTables\r\nContent-Length: 2\r\n"),
	       "{}", A, SBX_CLASSIFY_HOLD, "aws:ambiguous-action");
	expect("aws json: padding around the action is not a way around",
	       mkreq("POST", "dynamodb.us-east-1.amazonaws.com", "/",
		     "X-Amz-Target: DynamoDB_20120810.   DeleteTable\r\nContent-Length: 2\r\n"),
	       "{}", A, SBX_CLASSIFY_HOLD, "DeleteTable");

	/* Not an AWS host: the header means nothing. */
	expect("aws json: a non-AWS host with X-Amz-Target passes",
	       mkreq("POST", "api.example.com", "/", "X-Amz-Target: DynamoDB_20120810.DeleteTable\r\nContent-Length: 2\r\n"),
	       "{}", SBX_CLS_ALL, SBX_CLASSIFY_PASS, NULL);
	expect("aws json: a look-alike host passes",
	       mkreq("POST", "dynamodb.amazonaws.com.evil.example", "/",
		     "X-Amz-Target: DynamoDB_20120810.DeleteTable\r\nContent-Length: 2\r\n"),
	       "{}", A, SBX_CLASSIFY_PASS, NULL);
	expect("aws json: notamazonaws.com is not AWS",
	       mkreq("POST", "notamazonaws.com", "/", "X-Amz-Target: X.DeleteTable\r\nContent-Length: 2\r\n"), "{}", A,
	       SBX_CLASSIFY_PASS, NULL);
	expect("aws json: disabled classifier",
	       mkreq("POST", "dynamodb.us-east-1.amazonaws.com", "/", "X-Amz-Target: X.DeleteTable\r\nContent-Length: 2\r\n"),
	       "{}", SBX_CLS_ALL & ~A, SBX_CLASSIFY_PASS, NULL);

	{
		static const char *const hosts[] = {"amazonaws.com",		 "s3.cn-north-1.amazonaws.com.cn",
						    "amazonaws.com.cn",		 "EC2.US-EAST-1.AMAZONAWS.COM",
						    "ec2.us-east-1.amazonaws.com.", "ec2.us-east-1.amazonaws.com:443"};

		for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
			char name[128];
			struct rq *q = mkreq("POST", "x.amazonaws.com", "/", "X-Amz-Target: X.DeleteTable\r\nContent-Length: 2\r\n");

			sbx_strlcpy(q->host, hosts[i], sizeof(q->host));
			snprintf(name, sizeof(name), "aws host: %s is AWS", hosts[i]);
			expect(name, q, "{}", A, SBX_CLASSIFY_HOLD, "DeleteTable");
		}
	}
	{
		struct rq *q = mkreq("POST", "x.amazonaws.com", "/", "X-Amz-Target: X.DeleteTable\r\nContent-Length: 2\r\n");

		q->host[0] = '\0';
		expect("aws host: an address only (host \"\") is not AWS", q, "{}", A, SBX_CLASSIFY_PASS, NULL);
	}
	expect("aws rpcv2: the operation in the path",
	       mkreq("POST", "monitoring.us-east-1.amazonaws.com", "/service/GraniteServiceVersion20100801/operation/DeleteAlarms",
		     "Smithy-Protocol: rpc-v2-cbor\r\nContent-Type: application/cbor\r\nContent-Length: 2\r\n"),
	       "{}", A, SBX_CLASSIFY_HOLD, "DeleteAlarms");
	seed("aws-rpcv2", mkreq("POST", "monitoring.us-east-1.amazonaws.com",
				"/service/GraniteServiceVersion20100801/operation/DeleteAlarms",
				"Smithy-Protocol: rpc-v2-cbor\r\nContent-Type: application/cbor\r\nContent-Length: 2\r\n"),
	     "{}", 2);
	expect("aws rpcv2: a read passes",
	       mkreq("POST", "monitoring.us-east-1.amazonaws.com", "/service/GraniteServiceVersion20100801/operation/DescribeAlarms",
		     "Smithy-Protocol: rpc-v2-cbor\r\nContent-Type: application/cbor\r\nContent-Length: 2\r\n"),
	       "{}", A, SBX_CLASSIFY_PASS, NULL);
}

static void test_aws_query(void)
{
	const unsigned A = 1u << SBX_CLS_AWS;
	const char *cf = "cloudformation.us-east-1.amazonaws.com";
	struct sbx_classify_result r;
	struct rq *q;

	q = mkreq("GET", cf, "/?Action=DeleteStack&StackName=prod&Version=2010-05-15", "");
	expect("aws query: Action in the URL", q, NULL, A, SBX_CLASSIFY_HOLD, "DeleteStack");
	cls(q, NULL, 0, true, A, &r);
	ok(strstr(r.reason, "query protocol") && strstr(r.reason, "URL"), "aws query: the reason says where: %s", r.reason);
	seed("aws-query-url", q, NULL, 0);
	expect("aws query: a read in the URL", mkreq("GET", cf, "/?Action=DescribeStacks&Version=2010-05-15", ""), NULL, A,
	       SBX_CLASSIFY_PASS, NULL);
	expect("aws query: percent-encoded name and value",
	       mkreq("GET", cf, "/?%41ction=Delete%53tack&Version=2010-05-15", ""), NULL, A, SBX_CLASSIFY_HOLD, "DeleteStack");
	expect("aws query: '+' is a space, trimmed", mkreq("GET", cf, "/?Action=+DeleteStack+", ""), NULL, A,
	       SBX_CLASSIFY_HOLD, "DeleteStack");
	expect("aws query: Action twice in the URL is ambiguous",
	       mkreq("GET", cf, "/?Action=DescribeStacks&Action=DescribeStacks", ""), NULL, A, SBX_CLASSIFY_HOLD,
	       "aws:ambiguous-action");
	expect("aws query: a malformed escape in a name cannot be read", mkreq("GET", cf, "/?Act%zzion=DeleteStack", ""),
	       NULL, A, SBX_CLASSIFY_HOLD, "aws:malformed-parameters");
	expect("aws query: a malformed escape in the action cannot be read", mkreq("GET", cf, "/?Action=Delete%5", ""),
	       NULL, A, SBX_CLASSIFY_HOLD, "aws:malformed-parameters");
	expect("aws query: other names are not Action", mkreq("GET", cf, "/?Actionx=DeleteStack&xAction=DeleteStack&action=DeleteStack", ""),
	       NULL, A, SBX_CLASSIFY_PASS, NULL);
	expect("aws query: empty pieces are skipped", mkreq("GET", cf, "/?&&Action=DeleteStack&", ""), NULL, A,
	       SBX_CLASSIFY_HOLD, "DeleteStack");
}

static void test_aws_form(void)
{
	const unsigned A = 1u << SBX_CLS_AWS;
	const char *ec2 = "ec2.us-east-1.amazonaws.com";
	const char *form = "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\nTransfer-Encoding: chunked\r\n";
	struct sbx_classify_result r;
	struct rq *q;
	char *big;

	q = mkreq("POST", ec2, "/", form);
	expect("aws form: Action in the body", q, "Action=TerminateInstances&InstanceId.1=i-1&Version=2016-11-15", A,
	       SBX_CLASSIFY_HOLD, "TerminateInstances");
	seed("aws-form-terminate", q, "Action=TerminateInstances&InstanceId.1=i-1&Version=2016-11-15",
	     strlen("Action=TerminateInstances&InstanceId.1=i-1&Version=2016-11-15"));
	expect("aws form: percent-encoding and '+'", q, "Version=2016-11-15&Action=Terminate%49nstances+", A,
	       SBX_CLASSIFY_HOLD, "TerminateInstances");
	expect("aws form: a read", q, "Action=DescribeInstances&Version=2016-11-15", A, SBX_CLASSIFY_PASS, NULL);
	expect("aws form: Action twice in the body", q, "Action=DescribeInstances&Action=DescribeInstances", A,
	       SBX_CLASSIFY_HOLD, "aws:ambiguous-action");
	expect("aws form: an empty body", q, "", A, SBX_CLASSIFY_PASS, NULL);

	q = mkreq("POST", ec2, "/?Action=DescribeInstances", form);
	expect("aws form: URL and body disagree", q, "Action=TerminateInstances", A, SBX_CLASSIFY_HOLD, NULL);
	expect("aws form: URL and body agree, still twice", q, "Action=DescribeInstances", A, SBX_CLASSIFY_HOLD,
	       "aws:ambiguous-action");
	expect("aws form: URL action alone", q, "Version=2016-11-15", A, SBX_CLASSIFY_PASS, NULL);

	q = mkreq("POST", ec2, "/", "Content-Type: APPLICATION/X-WWW-FORM-URLENCODED\r\nTransfer-Encoding: chunked\r\n");
	expect("aws form: the media type ignores case", q, "Action=DeleteVpc", A, SBX_CLASSIFY_HOLD, "DeleteVpc");
	q = mkreq("POST", ec2, "/", "Transfer-Encoding: chunked\r\n");
	expect("aws form: no Content-Type is read as a form", q, "Action=DeleteVpc", A, SBX_CLASSIFY_HOLD, "DeleteVpc");
	q = mkreq("POST", ec2, "/", "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n");
	expect("aws form: another media type is not a form", q, "Action=DeleteVpc", A, SBX_CLASSIFY_PASS, NULL);
	ok(!sbx_classify_wants_body(&q->in, SBX_CLS_ALL), "aws form: JSON bodies are not wanted");
	q = mkreq("POST", ec2, "/", "Content-Type: application/x-www-form-urlencoded\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n");
	expect("aws form: two Content-Types are ambiguous", q, "Version=1", A, SBX_CLASSIFY_HOLD, "aws:ambiguous-action");
	q = mkreq("POST", ec2, "/", "Content-Type: application/x-www-form-urlencoded\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n");
	expect("aws form: an encoded body cannot be read", q, "\x1f\x8b", A, SBX_CLASSIFY_HOLD, "aws:unreadable-body");
	q = mkreq("POST", ec2, "/", "Content-Type: application/x-www-form-urlencoded\r\nContent-Encoding: identity\r\nTransfer-Encoding: chunked\r\n");
	expect("aws form: identity is no encoding", q, "Action=DeleteVpc", A, SBX_CLASSIFY_HOLD, "DeleteVpc");

	/* MORE, complete, cap. */
	q = mkreq("POST", ec2, "/", form);
	ok(sbx_classify_wants_body(&q->in, SBX_CLS_ALL), "aws form: the body is wanted");
	ok(!sbx_classify_wants_body(&q->in, SBX_CLS_ALL & ~A), "aws form: not wanted with aws disabled");
	is_int(cls(q, "Action=DescribeInstances&Ver", 28, false, A, &r), SBX_CLASSIFY_MORE,
	       "aws form: a read with more to come is MORE (another Action could follow)");
	is_int(cls(q, "Action=Delete", 13, false, A, &r), SBX_CLASSIFY_MORE, "aws form: an unfinished piece is not judged");
	is_int(cls(q, "Action=DeleteVpc&", 17, false, A, &r), SBX_CLASSIFY_HOLD,
	       "aws form: a finished destructive piece holds before the end");
	is_int(cls(q, "Action=DescribeInstances&Ver", 28, true, A, &r), SBX_CLASSIFY_PASS, "aws form: the same, complete");
	is_int(cls(q, "Action=DescribeInstances&Ver", 28, false, SBX_CLS_ALL, &r), SBX_CLASSIFY_MORE,
	       "aws form: MORE with every classifier on");

	big = malloc(CAP + 16);
	for (size_t i = 0; i + 4 <= CAP + 16; i += 4)
		memcpy(big + i, "a=b&", 4);
	is_int(cls(q, big, CAP - 1, false, A, &r), SBX_CLASSIFY_MORE, "aws form: below the cap, MORE");
	is_int(cls(q, big, CAP, false, A, &r), SBX_CLASSIFY_HOLD, "aws form: at the cap, undecided is HOLD");
	ok(!strcmp(r.action, "aws:unreadable-body") && strstr(r.reason, "256 KiB"), "aws form: the reason names the cap: %s",
	   r.reason);
	is_int(cls(q, big, CAP + 16, true, A, &r), SBX_CLASSIFY_HOLD,
	       "aws form: a complete body over the cap is judged on the cap");
	free(big);

	q = mkreq("POST", ec2, "/", "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 16\r\n");
	is_int(cls(q, "Action=DeleteVpc", 16, false, A, &r), SBX_CLASSIFY_HOLD,
	       "aws form: reaching the Content-Length completes the body");
	is_int(cls(q, "Action=DescribeV", 16, false, A, &r), SBX_CLASSIFY_PASS,
	       "aws form: ... and a read then passes");
	q = mkreq("POST", ec2, "/", "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n");
	ok(!sbx_classify_wants_body(&q->in, SBX_CLS_ALL), "aws form: Content-Length 0 wants no body");
	is_int(cls(q, NULL, 0, false, A, &r), SBX_CLASSIFY_PASS, "aws form: Content-Length 0 is complete");
	q = mkreq("GET", ec2, "/?Action=DescribeInstances", "");
	ok(!sbx_classify_wants_body(&q->in, SBX_CLS_ALL), "aws query: a GET wants no body");
	q = mkreq("POST", "api.example.com", "/", form);
	ok(!sbx_classify_wants_body(&q->in, SBX_CLS_ALL), "aws form: not on other hosts");
}

static void test_aws_rest(void)
{
	const unsigned A = 1u << SBX_CLS_AWS;
	const char *s3 = "bucket.s3.eu-west-1.amazonaws.com";
	struct sbx_classify_result r;
	struct rq *q;

	q = mkreq("DELETE", s3, "/key.txt", "");
	expect("aws rest: DELETE", q, NULL, A, SBX_CLASSIFY_HOLD, "DELETE");
	cls(q, NULL, 0, true, SBX_CLS_ALL, &r);
	ok(r.which == SBX_CLS_AWS && strstr(r.reason, "AWS REST"), "aws rest: AWS is asked first and says so: %s", r.reason);
	seed("aws-rest-delete", q, NULL, 0);
	cls(q, NULL, 0, true, 1u << SBX_CLS_HTTP_DELETE, &r);
	ok(r.verdict == SBX_CLASSIFY_HOLD && r.which == SBX_CLS_HTTP_DELETE, "aws rest: http-delete alone holds it too");

	expect("aws rest: PUT ?policy", mkreq("PUT", s3, "/?policy", "Content-Length: 2\r\n"), "{}", A, SBX_CLASSIFY_HOLD,
	       "PUT ?policy");
	seed("aws-s3-policy", mkreq("PUT", s3, "/?policy", "Content-Length: 2\r\n"), "{}", 2);
	expect("aws rest: PUT ?policy=", mkreq("PUT", s3, "/?policy=", "Content-Length: 2\r\n"), "{}", A, SBX_CLASSIFY_HOLD,
	       "PUT ?policy");
	expect("aws rest: PUT ?x&policy", mkreq("PUT", s3, "/?versionId=1&policy", "Content-Length: 2\r\n"), "{}", A,
	       SBX_CLASSIFY_HOLD, "PUT ?policy");
	expect("aws rest: POST ?policy", mkreq("POST", s3, "/?policy", "Content-Type: application/json\r\nContent-Length: 2\r\n"),
	       "{}", A, SBX_CLASSIFY_HOLD, "POST ?policy");
	expect("aws rest: ?policyx is another parameter", mkreq("PUT", s3, "/?policyx", "Content-Length: 2\r\n"), "{}", A,
	       SBX_CLASSIFY_PASS, NULL);
	expect("aws rest: ?xpolicy is another parameter", mkreq("PUT", s3, "/?xpolicy", "Content-Length: 2\r\n"), "{}", A,
	       SBX_CLASSIFY_PASS, NULL);
	expect("aws rest: GET ?policy reads", mkreq("GET", s3, "/?policy", ""), NULL, A, SBX_CLASSIFY_PASS, NULL);
	expect("aws rest: POST ?delete", mkreq("POST", s3, "/?delete", "Content-Type: application/xml\r\nContent-Length: 2\r\n"),
	       "<>", A, SBX_CLASSIFY_HOLD, "POST ?delete");
	expect("aws rest: POST ?delete=", mkreq("POST", s3, "/?delete=", "Content-Type: application/xml\r\nContent-Length: 2\r\n"),
	       "<>", A, SBX_CLASSIFY_HOLD, "POST ?delete");
	expect("aws rest: ?deletex is another parameter",
	       mkreq("POST", s3, "/?deletex", "Content-Type: application/xml\r\nContent-Length: 2\r\n"), "<>", A,
	       SBX_CLASSIFY_PASS, NULL);
	expect("aws rest: PUT ?delete is not DeleteObjects", mkreq("PUT", s3, "/?delete", "Content-Length: 2\r\n"), "{}", A,
	       SBX_CLASSIFY_PASS, NULL);
	expect("aws rest: GET object", mkreq("GET", s3, "/policy/delete", ""), NULL, SBX_CLS_ALL, SBX_CLASSIFY_PASS, NULL);
	expect("aws rest: ListBuckets", mkreq("GET", "s3.amazonaws.com", "/", ""), NULL, SBX_CLS_ALL, SBX_CLASSIFY_PASS, NULL);
	expect("aws rest: PUT object", mkreq("PUT", s3, "/file", "Content-Length: 2\r\n"), "{}", SBX_CLS_ALL,
	       SBX_CLASSIFY_PASS, NULL);
}

/* ---- http-delete ---- */

static void test_http_delete(void)
{
	const unsigned D = 1u << SBX_CLS_HTTP_DELETE;
	struct sbx_classify_result r;
	struct rq *q;

	q = mkreq("DELETE", "api.example.com", "/v1/things/42", "");
	expect("http-delete: DELETE", q, NULL, D, SBX_CLASSIFY_HOLD, "DELETE");
	cls(q, NULL, 0, true, D, &r);
	ok(r.which == SBX_CLS_HTTP_DELETE && strstr(r.reason, "api.example.com"), "http-delete: the reason names the host: %s",
	   r.reason);
	ok(!sbx_classify_wants_body(&q->in, SBX_CLS_ALL), "http-delete: needs no body");
	seed("http-delete", q, NULL, 0);
	expect("http-delete: a lowercase method too", mkreq("delete", "api.example.com", "/", ""), NULL, D,
	       SBX_CLASSIFY_HOLD, "DELETE");
	expect("http-delete: GET passes", mkreq("GET", "api.example.com", "/", ""), NULL, SBX_CLS_ALL, SBX_CLASSIFY_PASS, NULL);
	expect("http-delete: disabled", mkreq("DELETE", "api.example.com", "/", ""), NULL, SBX_CLS_ALL & ~D,
	       SBX_CLASSIFY_PASS, NULL);
	expect("http-delete: a method override", mkreq("POST", "api.example.com", "/x", "X-HTTP-Method-Override: delete\r\nContent-Length: 2\r\n"),
	       "{}", D, SBX_CLASSIFY_HOLD, "DELETE");
	expect("http-delete: an override to PATCH", mkreq("POST", "api.example.com", "/x", "X-HTTP-Method-Override: PATCH\r\nContent-Length: 2\r\n"),
	       "{}", D, SBX_CLASSIFY_PASS, NULL);
	q = mkreq("DELETE", "x", "/", "");
	q->host[0] = '\0';
	expect("http-delete: to an address", q, NULL, D, SBX_CLASSIFY_HOLD, "DELETE");
}

/* ---- git pushes built with git ---- */

struct repo {
	char dir[PATH_MAX];
	bool sha256;
	char A[65], B[65], C[65], D[65], T[65], Y[65], M[65], M2[65], E[65];
};

static const char *zero(const struct repo *r)
{
	return r->sha256 ? ZERO64 : ZERO40;
}

static const char *caps(const struct repo *r)
{
	return r->sha256 ? CAPS256 : CAPS1;
}

static void rev(const struct repo *r, const char *what, char out[65])
{
	capture(out, 65, "cd '%s' && git rev-parse '%s'", r->dir, what);
	if (strlen(out) != (r->sha256 ? 64u : 40u)) {
		printf("Bail out! git rev-parse %s in %s failed\n", what, r->dir);
		exit(1);
	}
}

/* Files of random hex text, so that the blobs are not deltas of each other. main: A - B - C;
 * side: A - D; topic: A - T; merge1: C - Y - M(Y, T); merge2: M2(T, Y); big: A - E with a 300 KB
 * file of random bytes. */
static int make_repo(struct repo *r, const char *name, bool sha256)
{
	memset(r, 0, sizeof(*r));
	r->sha256 = sha256;
	snprintf(r->dir, sizeof(r->dir), "%s/%s", tmpdir, name);
	if (sh("set -e; git init -q %s -b main '%s' && cd '%s' && "
	       "rnd() { head -c 3000 /dev/urandom | od -An -tx1 > $1; } && "
	       "rnd f && git add f && git commit -q -m A && git tag A && "
	       "rnd f && git commit -q -am B && git tag B && "
	       "rnd f && git commit -q -am C && git tag C && "
	       "git checkout -q -b side A && rnd g && git add g && git commit -q -m D && git tag D && "
	       "git checkout -q -b topic A && rnd t && git add t && git commit -q -m T && git tag T && "
	       "git checkout -q -b merge1 C && rnd y && git add y && git commit -q -m Y && git tag Y && "
	       "git merge -q --no-edit topic && git tag M && "
	       "git checkout -q -b merge2 T && git merge -q --no-edit Y && git tag M2 && "
	       "git checkout -q -b big A && head -c 300000 /dev/urandom > e && git add e && git commit -q -m E && "
	       "git tag E && git checkout -q main",
	       sha256 ? "--object-format=sha256" : "", r->dir, r->dir) != 0)
		return -1;
	rev(r, "A", r->A);
	rev(r, "B", r->B);
	rev(r, "C", r->C);
	rev(r, "D", r->D);
	rev(r, "T", r->T);
	rev(r, "Y", r->Y);
	rev(r, "M", r->M);
	rev(r, "M2", r->M2);
	rev(r, "E", r->E);
	return 0;
}

static struct rq *push_req(void)
{
	return mkreq("POST", "git.example.com", "/org/repo.git/git-receive-pack", PUSH_HEADERS);
}

/* Feeds prefixes of body (every stride bytes, and the whole) as incomplete, then the whole as
 * complete, with every classifier on. The complete verdict must be want (action too when given);
 * prefixes must be MORE up to some length and then one verdict for good, the complete one.
 * Returns the first prefix length that decided, or SIZE_MAX. */
static size_t check_push(const char *name, const struct body *b, size_t stride, enum sbx_classify_verdict want,
			 const char *action, const char *reason_has)
{
	struct rq *q = push_req();
	struct sbx_classify_result r;
	enum sbx_classify_verdict v, first_v = SBX_CLASSIFY_MORE;
	size_t first = SIZE_MAX;
	bool steady = true;

	v = cls(q, b->p, b->len, true, SBX_CLS_ALL, &r);
	if (!ok(v == want && (!action || !strcmp(r.action, action)) && (!reason_has || strstr(r.reason, reason_has)) &&
		    (v != SBX_CLASSIFY_HOLD || r.which == SBX_CLS_GIT_PUSH),
		"%s: %s%s%s", name, vname(want), action ? " " : "", action ? action : ""))
		diag("got %s action '%s' reason '%s'", vname(v), r.action, r.reason);
	for (size_t len = 0;; len += stride) {
		if (len > b->len)
			len = b->len;
		v = cls(q, b->p, len, false, SBX_CLS_ALL, &r);
		if (first == SIZE_MAX && v != SBX_CLASSIFY_MORE) {
			first = len;
			first_v = v;
		} else if (first != SIZE_MAX && v != first_v) {
			steady = false;
			diag("prefix %zu: %s after %s at %zu", len, vname(v), vname(first_v), first);
		}
		if (len == b->len)
			break;
	}
	ok(steady && (first == SIZE_MAX || first_v == want),
	   "%s: prefixes are MORE, then %s for good (decided at %zu of %zu bytes)", name, vname(want), first, b->len);
	return first;
}

static void test_git_real(struct repo *r, const char *tag)
{
	char name[160], revs[512];
	struct body b = {0};
	struct sbx_classify_result res;
	struct rq *q;
	size_t first, cmdlen;

	/* Fast-forward: decided by the commits at the head of the pack. */
	b_cmd(&b, r->A, r->C, "refs/heads/main", caps(r));
	b_flush(&b);
	snprintf(revs, sizeof(revs), "%s\n^%s\n", r->C, r->A);
	b_pack(&b, r->dir, revs, "");
	snprintf(name, sizeof(name), "git %s: fast-forward", tag);
	first = check_push(name, &b, 1, SBX_CLASSIFY_PASS, NULL, NULL);
	ok(first < b.len / 2, "git %s: the fast-forward is proven early (%zu of %zu bytes)", tag, first, b.len);
	is_int(cls(push_req(), b.p, b.len / 3, false, SBX_CLS_ALL, &res), SBX_CLASSIFY_PASS,
	       "git %s: PASS with a third of the body", tag);
	if (first > 4)
		is_int(cls(push_req(), b.p, first - 1, false, SBX_CLS_ALL, &res), SBX_CLASSIFY_MORE,
		       "git %s: truncated body is MORE", tag);
	snprintf(name, sizeof(name), "git-ff%s", r->sha256 ? "-sha256" : "");
	seed(name, push_req(), b.p, b.len);
	b_free(&b);

	/* Force: D does not descend from C. */
	b_cmd(&b, r->C, r->D, "refs/heads/main", caps(r));
	b_flush(&b);
	snprintf(revs, sizeof(revs), "%s\n^%s\n", r->D, r->C);
	b_pack(&b, r->dir, revs, "");
	snprintf(name, sizeof(name), "git %s: force push", tag);
	check_push(name, &b, 7, SBX_CLASSIFY_HOLD, "git-push:force refs/heads/main", "not an ancestor");
	snprintf(name, sizeof(name), "git-force%s", r->sha256 ? "-sha256" : "");
	seed(name, push_req(), b.p, b.len);
	b_free(&b);

	/* Delete: no pack at all, as send-pack does. */
	b_cmd(&b, r->D, zero(r), "refs/heads/side", caps(r));
	b_flush(&b);
	snprintf(name, sizeof(name), "git %s: delete", tag);
	check_push(name, &b, 1, SBX_CLASSIFY_HOLD, "git-push:delete refs/heads/side", "deletes refs/heads/side");
	is_int(cls(push_req(), b.p, b.len, false, SBX_CLS_ALL, &res), SBX_CLASSIFY_HOLD,
	       "git %s: a delete is held as soon as the commands are read", tag);
	if (!r->sha256)
		seed("git-delete", push_req(), b.p, b.len);
	b_free(&b);

	/* Create: nothing to lose. */
	b_cmd(&b, zero(r), r->C, "refs/heads/new", caps(r));
	b_flush(&b);
	cmdlen = b.len;
	snprintf(revs, sizeof(revs), "%s\n", r->C);
	b_pack(&b, r->dir, revs, "");
	snprintf(name, sizeof(name), "git %s: create", tag);
	first = check_push(name, &b, 1, SBX_CLASSIFY_PASS, NULL, NULL);
	is_int(first, cmdlen, "git %s: a creation passes on its commands alone", tag);
	b_free(&b);

	/* Merges: the first parent leads to old; then only the second one does. */
	b_cmd(&b, r->C, r->M, "refs/heads/main", caps(r));
	b_flush(&b);
	snprintf(revs, sizeof(revs), "%s\n^%s\n^%s\n", r->M, r->C, r->T);
	b_pack(&b, r->dir, revs, "");
	snprintf(name, sizeof(name), "git %s: fast-forward to a merge", tag);
	check_push(name, &b, 3, SBX_CLASSIFY_PASS, NULL, NULL);
	b_free(&b);
	b_cmd(&b, r->C, r->M2, "refs/heads/main", caps(r));
	b_flush(&b);
	snprintf(revs, sizeof(revs), "%s\n^%s\n^%s\n", r->M2, r->C, r->T);
	b_pack(&b, r->dir, revs, "");
	snprintf(name, sizeof(name), "git %s: fast-forward through a merge's second parent", tag);
	check_push(name, &b, 3, SBX_CLASSIFY_PASS, NULL, NULL);
	b_free(&b);

	/* The new commit is already on the server: the pack is empty and proves nothing. */
	b_cmd(&b, r->A, r->C, "refs/heads/main", caps(r));
	b_flush(&b);
	snprintf(revs, sizeof(revs), "%s\n^%s\n", r->C, r->C);
	b_pack(&b, r->dir, revs, "");
	snprintf(name, sizeof(name), "git %s: new already on the server (empty pack)", tag);
	check_push(name, &b, 1, SBX_CLASSIFY_HOLD, "git-push:force refs/heads/main", "not in the pushed pack");
	b_free(&b);

	/* Several refs, one forced: the forced one is named. */
	b_cmd(&b, zero(r), r->C, "refs/heads/a", caps(r));
	b_cmd(&b, r->A, r->C, "refs/heads/main", NULL);
	b_cmd(&b, r->C, r->D, "refs/heads/topic", NULL);
	b_cmd(&b, r->C, r->C, "refs/heads/same", NULL);
	b_flush(&b);
	snprintf(revs, sizeof(revs), "%s\n%s\n^%s\n", r->C, r->D, r->A);
	b_pack(&b, r->dir, revs, "");
	snprintf(name, sizeof(name), "git %s: several refs, one forced", tag);
	check_push(name, &b, 5, SBX_CLASSIFY_HOLD, "git-push:force refs/heads/topic", NULL);
	b_free(&b);

	/* The first offence in push order is named, and the action says when there are more: an
	 * "approve always" for one forced ref must not cover a push that forces two. */
	b_cmd(&b, r->C, r->D, "refs/heads/main", caps(r));
	b_cmd(&b, r->A, r->D, "refs/heads/topic", NULL);
	b_cmd(&b, r->C, r->D, "refs/heads/other", NULL);
	b_flush(&b);
	snprintf(revs, sizeof(revs), "%s\n^%s\n", r->D, r->C);
	b_pack(&b, r->dir, revs, "");
	snprintf(name, sizeof(name), "git %s: two forced refs and a fast-forward", tag);
	check_push(name, &b, 5, SBX_CLASSIFY_HOLD, "git-push:force refs/heads/main (+1 more)", "1 more ref update is held");
	b_free(&b);
	/* A force before a delete... */
	b_cmd(&b, r->C, r->D, "refs/heads/main", caps(r));
	b_cmd(&b, r->D, zero(r), "refs/heads/side", NULL);
	b_flush(&b);
	snprintf(revs, sizeof(revs), "%s\n^%s\n", r->D, r->C);
	b_pack(&b, r->dir, revs, "");
	snprintf(name, sizeof(name), "git %s: force, then delete", tag);
	check_push(name, &b, 5, SBX_CLASSIFY_HOLD, "git-push:force refs/heads/main (+1 more)", "1 more ref update");
	b_free(&b);
	/* ... a delete before a fast-forward ... */
	b_cmd(&b, r->D, zero(r), "refs/heads/side", caps(r));
	b_cmd(&b, r->A, r->C, "refs/heads/main", NULL);
	b_flush(&b);
	cmdlen = b.len;
	snprintf(revs, sizeof(revs), "%s\n^%s\n", r->C, r->A);
	b_pack(&b, r->dir, revs, "");
	snprintf(name, sizeof(name), "git %s: delete, then fast-forward (not proven yet: counted)", tag);
	first = check_push(name, &b, 1, SBX_CLASSIFY_HOLD, "git-push:delete refs/heads/side (+1 more)", NULL);
	is_int(first, cmdlen, "git %s: ... held on the commands", tag);
	b_free(&b);
	/* ... and a fast-forward before a delete, held once the fast-forward is proven. */
	b_cmd(&b, r->A, r->C, "refs/heads/main", caps(r));
	b_cmd(&b, r->D, zero(r), "refs/heads/side", NULL);
	b_flush(&b);
	snprintf(revs, sizeof(revs), "%s\n^%s\n", r->C, r->A);
	b_pack(&b, r->dir, revs, "");
	snprintf(name, sizeof(name), "git %s: fast-forward, then delete", tag);
	first = check_push(name, &b, 1, SBX_CLASSIFY_HOLD, "git-push:delete refs/heads/side", NULL);
	ok(first < b.len / 2, "git %s: ... held once the first is proven (%zu of %zu bytes)", tag, first, b.len);
	b_free(&b);

	/* A pack larger than the cap: a force push is undecided there, a fast-forward is not. */
	b_cmd(&b, r->C, r->E, "refs/heads/main", caps(r));
	b_flush(&b);
	snprintf(revs, sizeof(revs), "%s\n^%s\n", r->E, r->C);
	b_pack(&b, r->dir, revs, "");
	ok(b.len > CAP, "git %s: the big push is over the cap (%zu bytes)", tag, b.len);
	q = push_req();
	is_int(cls(q, b.p, CAP - 1, false, SBX_CLS_ALL, &res), SBX_CLASSIFY_MORE, "git %s: big force push below the cap: MORE",
	       tag);
	is_int(cls(q, b.p, CAP, false, SBX_CLS_ALL, &res), SBX_CLASSIFY_HOLD, "git %s: big force push at the cap: HOLD", tag);
	ok(!strcmp(res.action, "git-push:force refs/heads/main") && strstr(res.reason, "256 KiB"),
	   "git %s: ... named as a force push, the reason names the cap: %s", tag, res.reason);
	is_int(cls(q, b.p, b.len, true, SBX_CLS_ALL, &res), SBX_CLASSIFY_HOLD,
	       "git %s: ... and complete (judged on its first 256 KiB)", tag);
	b_free(&b);
	b_cmd(&b, r->A, r->E, "refs/heads/main", caps(r));
	b_flush(&b);
	snprintf(revs, sizeof(revs), "%s\n^%s\n", r->E, r->A);
	b_pack(&b, r->dir, revs, "");
	snprintf(name, sizeof(name), "git %s: big fast-forward", tag);
	check_push(name, &b, 4096, SBX_CLASSIFY_PASS, NULL, NULL);
	b_free(&b);

	/* push options come between the commands and the pack. */
	{
		char c[256];

		snprintf(c, sizeof(c), "%s push-options", caps(r));
		b_cmd(&b, r->A, r->C, "refs/heads/main", c);
		b_flush(&b);
		b_pkt(&b, "ci.skip", 7);
		b_pkt(&b, "merge_request.create", 20);
		b_flush(&b);
		snprintf(revs, sizeof(revs), "%s\n^%s\n", r->C, r->A);
		b_pack(&b, r->dir, revs, "");
		snprintf(name, sizeof(name), "git %s: fast-forward with push options", tag);
		check_push(name, &b, 3, SBX_CLASSIFY_PASS, NULL, NULL);
		if (!r->sha256)
			seed("git-push-options", push_req(), b.p, b.len);
		b_free(&b);
	}
}

/* Commits that git itself stores as deltas (20 commits with near-identical long messages). */
static void test_git_deltified(void)
{
	struct repo r;
	struct body b = {0};
	char revs[256], first[65], last[65], other[65], chains[32];

	memset(&r, 0, sizeof(r));
	snprintf(r.dir, sizeof(r.dir), "%s/deltas", tmpdir);
	if (sh("set -e; git init -q -b main '%s' && cd '%s' && msg=$(head -c 3000 /dev/zero | tr '\\0' x) && "
	       "for i in $(seq 1 20); do git commit -q --allow-empty -m \"$msg $i\"; done && "
	       "git checkout -q -b other HEAD~19 && git commit -q --allow-empty -m \"$msg other\" && git checkout -q main",
	       r.dir, r.dir) != 0) {
		ok(0, "git deltas: repository");
		return;
	}
	rev(&r, "main~19", first);
	rev(&r, "main", last);
	rev(&r, "other", other);

	/* Does git really store them as deltas? */
	snprintf(revs, sizeof(revs), "%s\n^%s\n", last, first);
	b_pack(&b, r.dir, revs, "--delta-base-offset");
	capture(chains, sizeof(chains),
		"cd '%s' && rm -rf v.git && git init -q --bare v.git && cd v.git && git index-pack --stdin < '%s/pack.bin' "
		"> /dev/null && git verify-pack -v objects/pack/*.idx | awk '$2 == \"commit\" && NF == 7' | wc -l",
		r.dir, tmpdir);
	ok(atoi(chains) >= 10, "git deltas: git stored %s commits as deltas", chains);
	b_free(&b);

	b_cmd(&b, first, last, "refs/heads/main", CAPS1);
	b_flush(&b);
	b_pack(&b, r.dir, revs, "--delta-base-offset");
	check_push("git deltas: fast-forward through ofs-delta commits", &b, 3, SBX_CLASSIFY_PASS, NULL, NULL);
	seed("git-ff-ofs-delta", push_req(), b.p, b.len);
	b_free(&b);

	b_cmd(&b, first, last, "refs/heads/main", CAPS1);
	b_flush(&b);
	b_pack(&b, r.dir, revs, "");
	check_push("git deltas: fast-forward through ref-delta commits", &b, 3, SBX_CLASSIFY_PASS, NULL, NULL);
	seed("git-ff-ref-delta", push_req(), b.p, b.len);
	b_free(&b);

	b_cmd(&b, other, last, "refs/heads/main", CAPS1);
	b_flush(&b);
	snprintf(revs, sizeof(revs), "%s\n^%s\n", last, other);
	b_pack(&b, r.dir, revs, "--delta-base-offset");
	check_push("git deltas: force push among deltas", &b, 3, SBX_CLASSIFY_HOLD, "git-push:force refs/heads/main", NULL);
	b_free(&b);
}

/* ---- git: protocol edges ---- */

static void test_git_protocol(void)
{
	struct body b = {0}, big = {0};
	struct sbx_classify_result res;
	const char *old = "1111111111111111111111111111111111111111", *new_ = "2222222222222222222222222222222222222222";
	struct rq *q;

	q = push_req();
	ok(sbx_classify_wants_body(&q->in, SBX_CLS_ALL), "git: a receive-pack POST wants its body");
	ok(!sbx_classify_wants_body(&q->in, SBX_CLS_ALL & ~(1u << SBX_CLS_GIT_PUSH)), "git: not with git disabled");
	q = mkreq("GET", "git.example.com", "/r.git/info/refs?service=git-receive-pack", "");
	ok(!sbx_classify_wants_body(&q->in, SBX_CLS_ALL), "git: the ref advertisement is not a push");
	expect("git: the ref advertisement passes", q, NULL, SBX_CLS_ALL, SBX_CLASSIFY_PASS, NULL);
	q = mkreq("POST", "git.example.com", "/r.git/git-upload-pack", "Content-Type: application/x-git-upload-pack-request\r\nContent-Length: 4\r\n");
	expect("git: a fetch passes", q, "0000", SBX_CLS_ALL, SBX_CLASSIFY_PASS, NULL);
	q = mkreq("POST", "git.example.com", "/r.git/git-receive-pack", "Content-Length: 0\r\n");
	ok(!sbx_classify_wants_body(&q->in, SBX_CLS_ALL), "git: no body, nothing to buffer");

	/* Found by the path alone, decoded, any case; or by the content type alone. */
	q = mkreq("POST", "git.example.com", "/r.git/GIT-RECEIVE-%50ACK", "Transfer-Encoding: chunked\r\n");
	expect("git: the path is matched decoded and without case", q, "garbage", SBX_CLS_ALL, SBX_CLASSIFY_HOLD,
	       "git-push:malformed");
	q = mkreq("POST", "git.example.com", "/somewhere-else", PUSH_HEADERS);
	expect("git: the receive-pack content type is enough", q, "garbage", SBX_CLS_ALL, SBX_CLASSIFY_HOLD,
	       "git-push:malformed");
	q = mkreq("POST", "git.example.com", "/r.git/git-receive-pack?x=1", "Transfer-Encoding: chunked\r\n");
	expect("git: the query is not part of the path", q, "garbage", SBX_CLS_ALL, SBX_CLASSIFY_HOLD,
	       "git-push:malformed");
	q = mkreq("POST", "git.example.com", "/r.git/git-receive-pack",
		  "Content-Type: application/x-git-receive-pack-request\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n");
	expect("git: an encoded push cannot be read", q, "\x1f\x8b", SBX_CLS_ALL, SBX_CLASSIFY_HOLD, "git-push:encoded");

	q = push_req();
	expect("git: a lone flush (git's probe) updates nothing", q, "0000", SBX_CLS_ALL, SBX_CLASSIFY_PASS, NULL);
	seed("git-probe", q, "0000", 4);
	expect("git: garbage", q, "hello world", SBX_CLS_ALL, SBX_CLASSIFY_HOLD, "git-push:malformed");
	expect("git: empty body", q, "", SBX_CLS_ALL, SBX_CLASSIFY_HOLD, "git-push:malformed");
	expect("git: a bad pkt-line length", q, "zzzz0000", SBX_CLS_ALL, SBX_CLASSIFY_HOLD, "git-push:malformed");
	expect("git: a delim-pkt", q, "00010000", SBX_CLS_ALL, SBX_CLASSIFY_HOLD, "git-push:malformed");
	expect("git: an empty pkt-line is no command", q, "00040000", SBX_CLS_ALL, SBX_CLASSIFY_HOLD, "git-push:malformed");
	expect("git: a pkt-line over 65520 bytes", q, "fff1", SBX_CLS_ALL, SBX_CLASSIFY_HOLD, "git-push:malformed");
	is_int(cls(q, "003", 3, false, SBX_CLS_ALL, &res), SBX_CLASSIFY_MORE, "git: half a length is MORE");

	b_cmd(&b, old, new_, "refs/heads/main", CAPS1);
	is_int(cls(q, b.p, b.len, false, SBX_CLS_ALL, &res), SBX_CLASSIFY_MORE, "git: commands without their flush: MORE");
	is_int(cls(q, b.p, b.len, true, SBX_CLS_ALL, &res), SBX_CLASSIFY_HOLD, "git: ... and complete: malformed");
	b_flush(&b);
	is_int(cls(q, b.p, b.len, false, SBX_CLS_ALL, &res), SBX_CLASSIFY_MORE, "git: an update without its pack: MORE");
	is_int(cls(q, b.p, b.len, true, SBX_CLS_ALL, &res), SBX_CLASSIFY_HOLD, "git: ... and complete: malformed");
	ok(!strcmp(res.action, "git-push:malformed") && strstr(res.reason, "pack"), "git: ... the reason says so: %s",
	   res.reason);
	b_add(&b, "PACX\0\0\0\2\0\0\0\0", 12);
	expectn("git: a pack with a bad signature", q, b.p, b.len, SBX_CLS_ALL, SBX_CLASSIFY_HOLD, "git-push:malformed");
	b.len -= 12;
	b_add(&b, "PACK\0\0\0\4\0\0\0\0", 12);
	is_int(cls(q, b.p, b.len, true, SBX_CLS_ALL, &res), SBX_CLASSIFY_HOLD, "git: pack version 4 is refused");
	b_free(&b);

	b_cmd(&b, "111111111111111111111111111111111111111", new_, "refs/heads/main", CAPS1);
	b_flush(&b);
	is_int(cls(q, b.p, b.len, true, SBX_CLS_ALL, &res), SBX_CLASSIFY_HOLD, "git: a short object id is malformed");
	b_free(&b);
	b_cmd(&b, "111111111111111111111111111111111111111g", new_, "refs/heads/main", CAPS1);
	b_flush(&b);
	is_int(cls(q, b.p, b.len, true, SBX_CLS_ALL, &res), SBX_CLASSIFY_HOLD, "git: a non-hex object id is malformed");
	b_free(&b);
	b_cmd(&b, old, new_, "refs/heads/main", "object-format=sha3");
	b_flush(&b);
	is_int(cls(q, b.p, b.len, true, SBX_CLS_ALL, &res), SBX_CLASSIFY_HOLD, "git: an unknown object format");
	b_free(&b);
	b_cmd(&b, ZERO40, new_, "refs/heads/a", CAPS1);
	b_cmd(&b, ZERO40 "000000000000000000000000", "2222222222222222222222222222222222222222222222222222222222222222",
	      "refs/heads/b", "object-format=sha256");
	b_flush(&b);
	is_int(cls(q, b.p, b.len, true, SBX_CLS_ALL, &res), SBX_CLASSIFY_HOLD, "git: commands that disagree on the format");
	b_free(&b);

	/* Shallow lines, NOOP updates, uppercase hex and a trailing LF are git's too. */
	b_str(&b, "0035shallow 3333333333333333333333333333333333333333\n");
	b_cmd(&b, ZERO40, new_, "refs/heads/a", CAPS1);
	b_cmd(&b, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "refs/heads/b\n", NULL);
	b_flush(&b);
	is_int(cls(q, b.p, b.len, true, SBX_CLS_ALL, &res), SBX_CLASSIFY_PASS,
	       "git: shallow line, creation and a no-op update need no pack");
	b_free(&b);
	b_str(&b, "0035shallow 33333333333333333333333333333333333333zz\n");
	expect("git: a bad shallow line", q, (const char *)b.p, SBX_CLS_ALL, SBX_CLASSIFY_HOLD, "git-push:malformed");
	b_free(&b);

	b_pkt(&b, "push-cert\0report-status", 23);
	b_pkt(&b, "certificate version 0.1\n", 24);
	expectn("git: a signed push", q, b.p, b.len, SBX_CLS_ALL, SBX_CLASSIFY_HOLD, "git-push:signed");
	seed("git-signed", q, b.p, b.len);
	is_int(cls(q, b.p, b.len, false, SBX_CLS_ALL, &res), SBX_CLASSIFY_HOLD, "git: ... held before the rest arrives");
	b_free(&b);

	/* The caps: commands that do not fit, too many updates. */
	while (big.len < CAP)
		b_str(&big, "0035shallow 3333333333333333333333333333333333333333\n");
	is_int(cls(q, big.p, CAP - 1, false, SBX_CLS_ALL, &res), SBX_CLASSIFY_MORE, "git: commands below the cap: MORE");
	is_int(cls(q, big.p, CAP, false, SBX_CLS_ALL, &res), SBX_CLASSIFY_HOLD, "git: commands at the cap: HOLD");
	ok(!strcmp(res.action, "git-push:too-large") && strstr(res.reason, "commands do not fit in 256 KiB"),
	   "git: ... the reason says so: %s", res.reason);
	b_free(&big);
	for (int i = 0; i < 65; i++) {
		char ref[32];

		snprintf(ref, sizeof(ref), "refs/heads/b%d", i);
		b_cmd(&b, old, new_, ref, i ? NULL : CAPS1);
	}
	b_flush(&b);
	is_int(cls(q, b.p, b.len, false, SBX_CLS_ALL, &res), SBX_CLASSIFY_HOLD, "git: 65 updated refs are too many to check");
	ok(!strcmp(res.action, "git-push:too-large"), "git: ... too-large: %s", res.reason);
	b_free(&b);
}

/* ---- git: crafted packs ---- */

static void hash_obj(const char *type, const void *d, size_t n, uint8_t *oid, char *hex)
{
	char head[64];
	int hl = snprintf(head, sizeof(head), "%s %zu", type, n);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int len = 0;

	EVP_DigestInit_ex(c, EVP_sha1(), NULL);
	EVP_DigestUpdate(c, head, (size_t)hl + 1);
	EVP_DigestUpdate(c, d, n);
	EVP_DigestFinal_ex(c, oid, &len);
	EVP_MD_CTX_free(c);
	for (unsigned i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", oid[i]);
}

static void pk_begin(struct body *b, uint32_t count)
{
	uint8_t h[12] = {'P', 'A', 'C', 'K', 0, 0, 0, 2, (uint8_t)(count >> 24), (uint8_t)(count >> 16),
			 (uint8_t)(count >> 8), (uint8_t)count};

	b_add(b, h, sizeof(h));
}

static void pk_hdr(struct body *b, unsigned type, size_t size)
{
	uint8_t c = (uint8_t)(type << 4 | (size & 15));

	size >>= 4;
	while (size) {
		c |= 0x80;
		b_add(b, &c, 1);
		c = size & 0x7f;
		size >>= 7;
	}
	b_add(b, &c, 1);
}

static void pk_zlib(struct body *b, const void *d, size_t n)
{
	uLongf cap = compressBound((uLong)n);
	uint8_t *z = malloc(cap);

	if (!z || compress2(z, &cap, d, (uLong)n, 9) != Z_OK) {
		printf("Bail out! compress2 failed\n");
		exit(1);
	}
	b_add(b, z, cap);
	free(z);
}

static void pk_ofs(struct body *b, uint64_t off)
{
	uint8_t buf[16];
	size_t pos = sizeof(buf) - 1;

	buf[pos] = off & 127;
	while (off >>= 7)
		buf[--pos] = (uint8_t)(128 | (--off & 127));
	b_add(b, buf + pos, sizeof(buf) - pos);
}

static void pk_end(struct body *b, size_t pack_at)
{
	uint8_t md[20];
	unsigned int len = 0;

	EVP_Digest(b->p + pack_at, b->len - pack_at, md, &len, EVP_sha1(), NULL);
	b_add(b, md, sizeof(md));
}

static void dl_varint(struct body *d, size_t v)
{
	do {
		uint8_t c = v & 0x7f;

		v >>= 7;
		if (v)
			c |= 0x80;
		b_add(d, &c, 1);
	} while (v);
}

static void dl_copy(struct body *d, size_t off, size_t size)
{
	uint8_t ins[8];
	size_t n = 1;

	ins[0] = 0x80;
	for (unsigned i = 0; i < 4; i++)
		if ((off >> (8 * i)) & 0xff) {
			ins[0] |= (uint8_t)(1u << i);
			ins[n++] = (uint8_t)(off >> (8 * i));
		}
	for (unsigned i = 0; i < 3; i++)
		if ((size >> (8 * i)) & 0xff) {
			ins[0] |= (uint8_t)(0x10u << i);
			ins[n++] = (uint8_t)(size >> (8 * i));
		}
	b_add(d, ins, n);
}

static void dl_insert(struct body *d, const void *s, size_t n)
{
	const uint8_t *p = s;

	while (n) {
		uint8_t k = (uint8_t)(n > 127 ? 127 : n);

		b_add(d, &k, 1);
		b_add(d, p, k);
		p += k;
		n -= k;
	}
}

#define TREE "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
#define WHO "author A U Thor <a@example.com> 1700000000 +0000\ncommitter A U Thor <a@example.com> 1700000000 +0000\n\n"
#define OLD1 "1111111111111111111111111111111111111111"

struct crafted {
	char c1[512], c2[512], c3[512];
	size_t n1, n2, n3;
	uint8_t o1[20], o2[20], o3[20];
	char h1[41], h2[41], h3[41];
};

/* c1 (parent OLD1) <- c2 <- c3, and a delta of child from parent: the tree line and the
 * author block copied from the parent, the parent line and the message inserted. */
static void crafted_init(struct crafted *k)
{
	k->n1 = (size_t)snprintf(k->c1, sizeof(k->c1), TREE "parent " OLD1 "\n" WHO "first\n");
	hash_obj("commit", k->c1, k->n1, k->o1, k->h1);
	k->n2 = (size_t)snprintf(k->c2, sizeof(k->c2), TREE "parent %s\n" WHO "second\n", k->h1);
	hash_obj("commit", k->c2, k->n2, k->o2, k->h2);
	k->n3 = (size_t)snprintf(k->c3, sizeof(k->c3), TREE "parent %s\n" WHO "third\n", k->h2);
	hash_obj("commit", k->c3, k->n3, k->o3, k->h3);
}

static void delta_of(struct body *d, const char *base, size_t bn, const char *child, size_t cn)
{
	size_t tree = strlen(TREE), parent = 48, who = strlen(WHO);

	dl_varint(d, bn);
	dl_varint(d, cn);
	dl_copy(d, 0, tree);
	dl_insert(d, child + tree, parent);
	dl_copy(d, tree + parent, who);
	dl_insert(d, child + tree + parent + who, cn - tree - parent - who);
}

static void push_head(struct body *b, const char *new_hex)
{
	b_cmd(b, OLD1, new_hex, "refs/heads/main", CAPS1);
	b_flush(b);
}

static void test_git_crafted(void)
{
	struct crafted k;
	struct body b = {0}, d = {0};
	struct sbx_classify_result res;
	struct rq *q = push_req();
	size_t at, off2, off3;

	crafted_init(&k);

	/* c1 whole, c2 as an ofs-delta of c1, c3 as an ofs-delta of c2 (a chain). */
	push_head(&b, k.h3);
	at = b.len;
	pk_begin(&b, 3);
	pk_hdr(&b, 1, k.n1);
	pk_zlib(&b, k.c1, k.n1);
	off2 = b.len - at;
	delta_of(&d, k.c1, k.n1, k.c2, k.n2);
	pk_hdr(&b, 6, d.len);
	pk_ofs(&b, off2 - 12);
	pk_zlib(&b, d.p, d.len);
	b_free(&d);
	delta_of(&d, k.c2, k.n2, k.c3, k.n3);
	off3 = b.len - at;
	pk_hdr(&b, 6, d.len);
	pk_ofs(&b, off3 - off2);
	pk_zlib(&b, d.p, d.len);
	b_free(&d);
	pk_end(&b, at);
	check_push("crafted: a chain of ofs-deltas, parents first", &b, 1, SBX_CLASSIFY_PASS, NULL, NULL);
	seed("crafted-ofs-chain", q, b.p, b.len);
	b_free(&b);

	/* c1 whole, c2 as a ref-delta naming c1. */
	push_head(&b, k.h2);
	at = b.len;
	pk_begin(&b, 2);
	pk_hdr(&b, 1, k.n1);
	pk_zlib(&b, k.c1, k.n1);
	delta_of(&d, k.c1, k.n1, k.c2, k.n2);
	pk_hdr(&b, 7, d.len);
	b_add(&b, k.o1, 20);
	pk_zlib(&b, d.p, d.len);
	pk_end(&b, at);
	check_push("crafted: a ref-delta on an earlier commit", &b, 1, SBX_CLASSIFY_PASS, NULL, NULL);
	seed("crafted-ref-delta", q, b.p, b.len);
	b_free(&b);

	/* A ref-delta on a base that is not in the pack (a thin pack's server-side base): the commit
	 * cannot be rebuilt, so nothing is proven. */
	push_head(&b, k.h2);
	at = b.len;
	pk_begin(&b, 1);
	pk_hdr(&b, 7, d.len);
	b_add(&b, k.o3, 20);
	pk_zlib(&b, d.p, d.len);
	pk_end(&b, at);
	check_push("crafted: a delta on an unknown base proves nothing", &b, 1, SBX_CLASSIFY_HOLD,
		   "git-push:force refs/heads/main", "not in the pushed pack");
	b_free(&b);
	b_free(&d);

	/* Broken deltas. */
	{
		static const struct {
			const char *name;
			int kind;
		} bad[] = {
			{"crafted: a copy past the base's end", 0},
			{"crafted: the reserved opcode 0", 1},
			{"crafted: a source size that is not the base's", 2},
			{"crafted: a result longer than declared", 3},
			{"crafted: an insert cut short", 4},
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			push_head(&b, k.h2);
			at = b.len;
			pk_begin(&b, 2);
			pk_hdr(&b, 1, k.n1);
			pk_zlib(&b, k.c1, k.n1);
			off2 = b.len - at;
			dl_varint(&d, bad[i].kind == 2 ? k.n1 + 1 : k.n1);
			dl_varint(&d, bad[i].kind == 3 ? 10 : k.n2);
			if (bad[i].kind == 0)
				dl_copy(&d, k.n1 - 10, 20);
			else if (bad[i].kind == 1)
				b_add(&d, "\0", 1);
			else if (bad[i].kind == 4)
				b_add(&d, "\x7f" "abc", 4);
			else
				dl_insert(&d, k.c2, k.n2);
			pk_hdr(&b, 6, d.len);
			pk_ofs(&b, off2 - 12);
			pk_zlib(&b, d.p, d.len);
			pk_end(&b, at);
			check_push(bad[i].name, &b, 1, SBX_CLASSIFY_HOLD, "git-push:malformed", "delta");
			b_free(&b);
			b_free(&d);
		}
	}

	/* An ofs-delta whose offset lands inside an object, or before the pack. */
	push_head(&b, k.h2);
	at = b.len;
	pk_begin(&b, 2);
	pk_hdr(&b, 1, k.n1);
	pk_zlib(&b, k.c1, k.n1);
	off2 = b.len - at;
	delta_of(&d, k.c1, k.n1, k.c2, k.n2);
	pk_hdr(&b, 6, d.len);
	pk_ofs(&b, off2 - 13);
	pk_zlib(&b, d.p, d.len);
	pk_end(&b, at);
	check_push("crafted: an ofs-delta into the middle of an object", &b, 1, SBX_CLASSIFY_HOLD, "git-push:malformed",
		   "delta base");
	b_free(&b);
	push_head(&b, k.h2);
	at = b.len;
	pk_begin(&b, 1);
	pk_hdr(&b, 6, d.len);
	pk_ofs(&b, 100);
	pk_zlib(&b, d.p, d.len);
	pk_end(&b, at);
	check_push("crafted: an ofs-delta before the pack", &b, 1, SBX_CLASSIFY_HOLD, "git-push:malformed", NULL);
	b_free(&b);
	b_free(&d);

	/* Objects that are not what their header says. */
	push_head(&b, k.h1);
	at = b.len;
	pk_begin(&b, 1);
	pk_hdr(&b, 1, k.n1 + 1);
	pk_zlib(&b, k.c1, k.n1);
	pk_end(&b, at);
	check_push("crafted: an object shorter than declared", &b, 1, SBX_CLASSIFY_HOLD, "git-push:malformed", NULL);
	b_free(&b);
	push_head(&b, k.h1);
	at = b.len;
	pk_begin(&b, 1);
	pk_hdr(&b, 1, k.n1 - 1);
	pk_zlib(&b, k.c1, k.n1);
	pk_end(&b, at);
	check_push("crafted: an object longer than declared", &b, 1, SBX_CLASSIFY_HOLD, "git-push:malformed", NULL);
	b_free(&b);
	push_head(&b, k.h1);
	at = b.len;
	pk_begin(&b, 1);
	pk_hdr(&b, 5, 3);
	pk_zlib(&b, "abc", 3);
	pk_end(&b, at);
	check_push("crafted: the reserved object type 5", &b, 1, SBX_CLASSIFY_HOLD, "git-push:malformed", NULL);
	b_free(&b);
	push_head(&b, k.h1);
	at = b.len;
	pk_begin(&b, 1);
	pk_hdr(&b, 1, k.n1);
	b_add(&b, "\x78\x9c\xff\xff\xff\xff", 6);
	check_push("crafted: a broken zlib stream", &b, 1, SBX_CLASSIFY_HOLD, "git-push:malformed", NULL);
	b_free(&b);
	push_head(&b, k.h2);
	at = b.len;
	pk_begin(&b, 2);
	pk_hdr(&b, 1, k.n1);
	pk_zlib(&b, k.c1, k.n1);
	is_int(cls(q, b.p, b.len, true, SBX_CLS_ALL, &res), SBX_CLASSIFY_HOLD, "crafted: a pack that ends early is malformed");
	ok(strstr(res.reason, "object 1 of 2") != NULL, "crafted: ... the reason names the object: %s", res.reason);
	is_int(cls(q, b.p, b.len, false, SBX_CLS_ALL, &res), SBX_CLASSIFY_MORE, "crafted: ... and MORE while incomplete");
	b_free(&b);
	push_head(&b, k.h1);
	at = b.len;
	pk_begin(&b, 2);
	pk_hdr(&b, 1, k.n1);
	pk_zlib(&b, k.c1, k.n1);
	is_int(cls(q, b.p, b.len, true, SBX_CLS_ALL, &res), SBX_CLASSIFY_PASS,
	       "crafted: a proof before the pack's end stands, whatever follows");
	b_free(&b);

	/* Commits git would not read parents from prove nothing. */
	{
		char c[512], h[41];
		uint8_t o[20];
		size_t n;

		n = (size_t)snprintf(c, sizeof(c), "parent " OLD1 "\n" WHO "no tree line\n");
		hash_obj("commit", c, n, o, h);
		push_head(&b, h);
		at = b.len;
		pk_begin(&b, 1);
		pk_hdr(&b, 1, n);
		pk_zlib(&b, c, n);
		pk_end(&b, at);
		check_push("crafted: a commit without a tree line has no parents", &b, 1, SBX_CLASSIFY_HOLD,
			   "git-push:force refs/heads/main", "not an ancestor");
		b_free(&b);

		n = (size_t)snprintf(c, sizeof(c), TREE "parent " OLD1 "\n");
		hash_obj("commit", c, n, o, h);
		push_head(&b, h);
		at = b.len;
		pk_begin(&b, 1);
		pk_hdr(&b, 1, n);
		pk_zlib(&b, c, n);
		pk_end(&b, at);
		check_push("crafted: a parent line that ends the commit is not read (as git)", &b, 1, SBX_CLASSIFY_HOLD,
			   "git-push:force refs/heads/main", NULL);
		b_free(&b);

		n = (size_t)snprintf(c, sizeof(c), TREE "parent 3333\n" "parent " OLD1 "\n" WHO "x\n");
		hash_obj("commit", c, n, o, h);
		push_head(&b, h);
		at = b.len;
		pk_begin(&b, 1);
		pk_hdr(&b, 1, n);
		pk_zlib(&b, c, n);
		pk_end(&b, at);
		check_push("crafted: a bad parent line voids them all (as git)", &b, 1, SBX_CLASSIFY_HOLD,
			   "git-push:force refs/heads/main", NULL);
		b_free(&b);

		n = (size_t)snprintf(c, sizeof(c), TREE "parent " OLD1 "\n" WHO "upper\n");
		for (size_t i = strlen(TREE) + 7; i < strlen(TREE) + 47; i++)
			c[i] = 'A';
		hash_obj("commit", c, n, o, h);
		{
			struct body cmd = {0};

			b_cmd(&cmd, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", h, "refs/heads/main", CAPS1);
			b_flush(&cmd);
			at = cmd.len;
			pk_begin(&cmd, 1);
			pk_hdr(&cmd, 1, n);
			pk_zlib(&cmd, c, n);
			pk_end(&cmd, at);
			check_push("crafted: uppercase hex in a parent line is the same id (as git)", &cmd, 1,
				   SBX_CLASSIFY_PASS, NULL, NULL);
			b_free(&cmd);
		}
	}

	/* A commit over 1 MiB is too large to check. */
	push_head(&b, k.h1);
	at = b.len;
	pk_begin(&b, 1);
	{
		size_t n = (1u << 20) + 1;
		char *z = calloc(1, n);

		pk_hdr(&b, 1, n);
		pk_zlib(&b, z, n);
		free(z);
	}
	pk_end(&b, at);
	check_push("crafted: a commit over 1 MiB", &b, 97, SBX_CLASSIFY_HOLD, "git-push:too-large", "1 MiB");
	b_free(&b);

	/* A zlib bomb of blobs runs into the work budget instead of the CPU. */
	push_head(&b, k.h1);
	at = b.len;
	pk_begin(&b, 8);
	{
		size_t n = 8u << 20;
		char *z = calloc(1, n);

		for (int i = 0; i < 8; i++) {
			pk_hdr(&b, 3, n);
			pk_zlib(&b, z, n);
		}
		free(z);
	}
	pk_end(&b, at);
	ok(b.len < CAP, "crafted: 64 MiB of blobs in %zu bytes", b.len);
	is_int(cls(q, b.p, b.len, true, SBX_CLS_ALL, &res), SBX_CLASSIFY_HOLD, "crafted: a zlib bomb is held");
	ok(!strcmp(res.action, "git-push:too-large") && strstr(res.reason, "MiB"), "crafted: ... for its size: %s",
	   res.reason);
	b_free(&b);
}

int main(int argc, char **argv)
{
	char tmpl[] = "/tmp/sbx-test-classify-XXXXXX";
	struct repo r1, r256;

	if (argc > 2 && !strcmp(argv[1], "--seeds")) {
		seed_dir = argv[2];
		if (mkdir(seed_dir, 0755) < 0 && errno != EEXIST) {
			perror(seed_dir);
			return 1;
		}
	}
	if (!mkdtemp(tmpl)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	sbx_strlcpy(tmpdir, tmpl, sizeof(tmpdir));
	/* git alone, whatever the user's configuration says */
	setenv("HOME", tmpdir, 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_AUTHOR_NAME", "A U Thor", 1);
	setenv("GIT_AUTHOR_EMAIL", "author@example.com", 1);
	setenv("GIT_COMMITTER_NAME", "C O Mitter", 1);
	setenv("GIT_COMMITTER_EMAIL", "committer@example.com", 1);
	setenv("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z", 1);
	setenv("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z", 1);

	test_names();
	test_aws_json();
	test_aws_query();
	test_aws_form();
	test_aws_rest();
	test_http_delete();
	test_git_protocol();
	test_git_crafted();
	if (ok(make_repo(&r1, "sha1", false) == 0, "git: a SHA-1 repository with branches and merges"))
		test_git_real(&r1, "sha1");
	if (ok(make_repo(&r256, "sha256", true) == 0, "git: a SHA-256 repository"))
		test_git_real(&r256, "sha256");
	test_git_deltified();

	sbx_rm_rf(tmpdir);
	return done_testing();
}
