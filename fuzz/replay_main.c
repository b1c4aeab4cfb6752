/* replay_main.c - run a libFuzzer target without libFuzzer.
 *
 *   replay_NAME FILE|DIR...
 *
 * Linked with any fuzz/fuzz_*.c, it calls LLVMFuzzerTestOneInput once per file (directories are
 * walked recursively, dotfiles skipped), each input in an exact-size heap buffer so a sanitizer
 * build reports any read past its end. CI uses it to replay the seed corpora and every crash
 * ever found with a plain gcc + ASan/UBSan build. Exits non-zero if a file cannot be read; a
 * failed invariant aborts like it would under the fuzzer. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target; the weak reference is NULL when it does not define one. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Inputs larger than this are not fuzz inputs. */
#define REPLAY_MAX_INPUT (16u << 20)

static size_t nrun;

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint8_t *buf;
	size_t n;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) < 0 || st.st_size < 0 || (uint64_t)st.st_size > REPLAY_MAX_INPUT) {
		fprintf(stderr, "replay: %s: unreadable or larger than %u bytes\n", path, REPLAY_MAX_INPUT);
		fclose(f);
		return -1;
	}
	n = (size_t)st.st_size;
	buf = malloc(n ? n : 1);
	if (!buf || fread(buf, 1, n, f) != n) {
		fprintf(stderr, "replay: %s: read failed\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	nrun++;
	return 0;
}

static int run_path(const char *path, int depth)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path);
	if (depth > 16)
		return 0;
	d = opendir(path);
	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		char sub[PATH_MAX];

		if (de->d_name[0] == '.')
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >= (int)sizeof(sub)) {
			rc = -1;
			continue;
		}
		if (run_path(sub, depth + 1) < 0)
			rc = -1;
	}
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	int rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++)
		if (run_path(argv[i], 0) < 0)
			rc = 1;
	printf("replayed %zu input(s)\n", nrun);
	return rc;
}
