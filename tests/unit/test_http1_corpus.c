/* test_http1_corpus.c - runs the HTTP/1 parser over two directories of raw messages:
 *
 *   test_http1_corpus [REFUSE_DIR [VALID_DIR]]
 *
 * Every file in REFUSE_DIR (default tests/unit/smuggling) must be refused (status >= 400) and
 * every file in VALID_DIR (default tests/unit/http_valid) must be accepted completely. A file
 * holds one message or several pipelined ones, with their bodies, exactly as sent on the wire;
 * a name ending in ".resp" is read as responses to GET, anything else as requests. The corpus
 * grows by adding files; see the README next to them. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http1.h"
#include "tap.h"

#define MAX_FILE (1 << 20)

enum verdict { V_ACCEPTED, V_REFUSED, V_INCOMPLETE };

/* Frames the file as a sequence of messages, the way the proxy would. */
static enum verdict run_messages(const char *data, size_t len, bool response, struct sbx_http_error *err,
				 size_t *nmsgs)
{
	struct sbx_http_msg *m = malloc(sizeof(*m));
	enum verdict v = V_INCOMPLETE;
	size_t off = 0;

	*nmsgs = 0;
	if (!m)
		return V_INCOMPLETE;
	while (off < len) {
		int rc = response ? sbx_http_parse_response(data + off, len - off, "GET", m, err)
				  : sbx_http_parse_request(data + off, len - off, m, err);

		if (rc == SBX_HTTP_ERROR) {
			v = V_REFUSED;
			goto out;
		}
		if (rc == SBX_HTTP_INCOMPLETE)
			goto out;
		off += m->head_len;
		(*nmsgs)++;
		switch (m->body) {
		case SBX_HTTP_BODY_NONE:
			break;
		case SBX_HTTP_BODY_LENGTH:
			if (m->content_length > len - off)
				goto out;
			off += (size_t)m->content_length;
			break;
		case SBX_HTTP_BODY_CHUNKED: {
			struct sbx_http_chunked c;
			size_t used = 0;

			sbx_http_chunked_init(&c, MAX_FILE);
			rc = sbx_http_chunked_feed(&c, data + off, len - off, &used, NULL, NULL, err);
			if (rc < 0) {
				v = V_REFUSED;
				goto out;
			}
			if (rc == 0)
				goto out;
			off += used;
			break;
		}
		case SBX_HTTP_BODY_EOF:
		case SBX_HTTP_BODY_TUNNEL:
			off = len;
			break;
		}
	}
	v = *nmsgs ? V_ACCEPTED : V_INCOMPLETE;
out:
	free(m);
	return v;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(MAX_FILE + 1);
	if (!buf) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, MAX_FILE + 1, f);
	fclose(f);
	if (n > MAX_FILE) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

static bool skip_name(const char *name)
{
	return name[0] == '.' || strncmp(name, "README", 6) == 0;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Runs every file of dir; returns how many were checked. */
static int run_dir(const char *dir, bool want_refused)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort), checked = 0;

	if (n < 0) {
		ok(0, "open corpus directory %s", dir);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		char path[PATH_MAX];
		struct stat st;
		struct sbx_http_error err = {0, NULL};
		size_t len = 0, nmsgs = 0;
		char *data;

		if (skip_name(name) || snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
		    stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
			free(names[i]);
			continue;
		}
		data = read_file(path, &len);
		if (!data) {
			ok(0, "read %s", path);
			free(names[i]);
			continue;
		}
		/* Exact-size copy so a sanitizer build catches reads past the end. */
		char *exact = malloc(len ? len : 1);
		if (exact)
			memcpy(exact, data, len);
		free(data);
		enum verdict v = exact ? run_messages(exact, len, has_suffix(name, ".resp"), &err, &nmsgs) : V_INCOMPLETE;
		if (want_refused) {
			if (!ok(v == V_REFUSED && err.status >= 400 && err.reason, "refused %s (%d %s)", name, err.status,
				err.reason ? err.reason : "-"))
				diag("verdict %s after %zu message(s)", v == V_ACCEPTED ? "accepted" : "incomplete", nmsgs);
		} else {
			if (!ok(v == V_ACCEPTED, "accepted %s (%zu message%s)", name, nmsgs, nmsgs == 1 ? "" : "s"))
				diag("verdict %s: %d %s", v == V_REFUSED ? "refused" : "incomplete", err.status,
				     err.reason ? err.reason : "-");
		}
		checked++;
		free(exact);
		free(names[i]);
	}
	free(names);
	return checked;
}

/* The default directories are relative to the source tree. Tests normally run from its root;
 * otherwise look upwards from the executable (build/tests/test_http1_corpus). */
static void find_dir(const char *rel, char *out, size_t outlen)
{
	char exe[PATH_MAX];
	struct stat st;
	ssize_t n;

	snprintf(out, outlen, "%s", rel);
	if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
		return;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return;
	exe[n] = '\0';
	for (int up = 0; up < 6; up++) {
		char *slash = strrchr(exe, '/');

		if (!slash)
			break;
		*slash = '\0';
		if (snprintf(out, outlen, "%s/%s", exe, rel) < (int)outlen && stat(out, &st) == 0 && S_ISDIR(st.st_mode))
			return;
	}
	snprintf(out, outlen, "%s", rel);
}

int main(int argc, char **argv)
{
	char refuse[PATH_MAX], valid[PATH_MAX];
	int n;

	if (argc > 1)
		snprintf(refuse, sizeof(refuse), "%s", argv[1]);
	else
		find_dir("tests/unit/smuggling", refuse, sizeof(refuse));
	if (argc > 2)
		snprintf(valid, sizeof(valid), "%s", argv[2]);
	else if (argc > 1)
		valid[0] = '\0'; /* only the directory asked for */
	else
		find_dir("tests/unit/http_valid", valid, sizeof(valid));

	n = run_dir(refuse, true);
	ok(n > 0, "%d message file(s) must be refused in %s", n, refuse);
	if (valid[0]) {
		n = run_dir(valid, false);
		ok(n > 0, "%d message file(s) must be accepted in %s", n, valid);
	}
	return done_testing();
}
