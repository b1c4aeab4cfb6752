/* test_cgroup.c - the cgroup manager.
 *
 * Part A builds fake cgroup file systems out of plain files in a temporary directory (v2 root,
 * v2 delegated, v1 root with separate and co-mounted controllers, v1 delegated and not) and
 * points the manager at them with sbx_cgroup_mgr_new_at(). A small "fake kernel" (the fs hooks)
 * fills new cgroup directories with the interface files the kernel would create, so the normal
 * path (mkdir, then write limits) is what gets tested.
 *
 * Part B runs only as root on a host with real cgroups: a real sandbox cgroup, a real child in
 * it, and the limits observed from the outside (fork refused at the pids limit, throttling, OOM
 * kill), then kill and removal, leaving nothing behind. */
#include "daemon/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "err.h"
#include "tap.h"
#include "util.h"

#define MIB (1024ULL * 1024ULL)
/* The error argument, cleared first, so a message never shows an earlier call's error. */
#define E (sbx_err_clear(&err), &err)

/* ---- file helpers ---- */

/* snprintf for test paths and texts: truncation would make a test meaningless, so it aborts. */
static void pf(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pf(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= n) {
		fprintf(stderr, "test text too long: %s\n", fmt);
		abort();
	}
}

static void path_join(char *out, size_t n, const char *a, const char *b)
{
	pf(out, n, "%s/%s", a, b);
}

static void put(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || sbx_write_all(fd, content, strlen(content)) < 0) {
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
		abort();
	}
	close(fd);
}

static void put_in(const char *dir, const char *file, const char *content)
{
	char p[PATH_MAX];

	path_join(p, sizeof(p), dir, file);
	put(p, content);
}

/* Contents without trailing newlines, in a rotating static buffer; NULL when missing. */
static const char *get(const char *path)
{
	static char bufs[4][4096];
	static int k;
	char *b = bufs[k++ % 4];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return NULL;
	n = sbx_read_all(fd, b, sizeof(bufs[0]) - 1);
	close(fd);
	if (n < 0)
		return NULL;
	b[n] = '\0';
	while (n > 0 && b[n - 1] == '\n')
		b[--n] = '\0';
	return b;
}

static const char *getf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *getf(const char *fmt, ...)
{
	char p[PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p, sizeof(p), fmt, ap);
	va_end(ap);
	return get(p);
}

static bool existsf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool existsf(const char *fmt, ...)
{
	char p[PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p, sizeof(p), fmt, ap);
	va_end(ap);
	return access(p, F_OK) == 0;
}

static void mkdir_p(const char *path)
{
	if (sbx_mkdir_p(path, 0755) < 0) {
		fprintf(stderr, "mkdir -p %s: %s\n", path, strerror(errno));
		abort();
	}
}

static bool contains(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle) != NULL;
}

/* As root the tests act as uid 1000 and hand it fake subtrees with chown, as root would on a
 * real host; as a user they act as themselves, and own everything already. */
static uid_t test_uid(void)
{
	return geteuid() == 0 ? 1000 : geteuid();
}

static void give_to_test_uid(const char *dir)
{
	DIR *d;
	struct dirent *de;
	char p[PATH_MAX];

	if (geteuid() != 0)
		return;
	if (chown(dir, test_uid(), (gid_t)-1) < 0)
		abort();
	d = opendir(dir);
	if (!d)
		abort();
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		path_join(p, sizeof(p), dir, de->d_name);
		if (lchown(p, test_uid(), (gid_t)-1) < 0)
			abort();
	}
	closedir(d);
}

/* ---- the fake kernel ---- */

struct fake_mount {
	const char *mnt;  /* mount point as in mountinfo */
	const char *ctls; /* super options, e.g. "cpu,cpuacct" */
};

struct fake {
	char root[PATH_MAX]; /* the temp dir, used as path_prefix */
	char mountinfo[PATH_MAX];
	char selfcg[PATH_MAX];
	bool v2;
	bool swap;     /* swap accounting: memory.swap.max / memory.memsw.* */
	bool has_kill; /* v2 cgroup.kill (5.14+) */
	struct fake_mount v1[10];
	size_t nv1;
	int mkdirs, rmdirs;
};

static bool list_has(const char *list, const char *word, char sep)
{
	size_t wl = strlen(word);

	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, sep);
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > 0 && *p == '+') /* subtree_control as we wrote it */
			p++, len--;
		if (len == wl && strncmp(p, word, wl) == 0)
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

static void fake_populate_v2(const struct fake *f, const char *dir, const char *enabled)
{
	char ctl[256] = "";

	put_in(dir, "cgroup.procs", "");
	put_in(dir, "cgroup.subtree_control", "");
	put_in(dir, "cgroup.events", "populated 0\nfrozen 0\n");
	put_in(dir, "cgroup.freeze", "0");
	put_in(dir, "cgroup.type", "domain");
	if (f->has_kill)
		put_in(dir, "cgroup.kill", "");
	if (list_has(enabled, "memory", ' ')) {
		put_in(dir, "memory.max", "max");
		put_in(dir, "memory.current", "0");
		put_in(dir, "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
		put_in(dir, "memory.oom.group", "0");
		if (f->swap)
			put_in(dir, "memory.swap.max", "max");
		pf(ctl + strlen(ctl), sizeof(ctl) - strlen(ctl), "memory ");
	}
	if (list_has(enabled, "cpu", ' ')) {
		put_in(dir, "cpu.max", "max 100000");
		put_in(dir, "cpu.weight", "100");
		pf(ctl + strlen(ctl), sizeof(ctl) - strlen(ctl), "cpu ");
	}
	if (list_has(enabled, "pids", ' ')) {
		put_in(dir, "pids.max", "max");
		put_in(dir, "pids.current", "0");
		pf(ctl + strlen(ctl), sizeof(ctl) - strlen(ctl), "pids ");
	}
	put_in(dir, "cgroup.controllers", ctl);
}

static void fake_populate_v1(const char *dir, const char *ctls, bool swap)
{
	put_in(dir, "cgroup.procs", "");
	put_in(dir, "tasks", "");
	put_in(dir, "notify_on_release", "0");
	put_in(dir, "cgroup.clone_children", "0");
	if (list_has(ctls, "memory", ',')) {
		put_in(dir, "memory.limit_in_bytes", "9223372036854771712");
		put_in(dir, "memory.usage_in_bytes", "0");
		put_in(dir, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
		put_in(dir, "memory.failcnt", "0");
		if (swap)
			put_in(dir, "memory.memsw.limit_in_bytes", "9223372036854771712");
	}
	if (list_has(ctls, "cpu", ',')) {
		put_in(dir, "cpu.cfs_period_us", "100000");
		put_in(dir, "cpu.cfs_quota_us", "-1");
		put_in(dir, "cpu.shares", "1024");
	}
	if (list_has(ctls, "cpuacct", ','))
		put_in(dir, "cpuacct.usage", "0");
	if (list_has(ctls, "pids", ','))
		put_in(dir, "pids.max", "max"), put_in(dir, "pids.current", "0");
	if (list_has(ctls, "freezer", ','))
		put_in(dir, "freezer.state", "THAWED");
	if (list_has(ctls, "cpuset", ','))
		put_in(dir, "cpuset.cpus", ""), put_in(dir, "cpuset.mems", "");
}

static void fake_on_mkdir(void *ud, const char *path)
{
	struct fake *f = ud;
	char parent[PATH_MAX];

	f->mkdirs++;
	if (f->v2) {
		char *slash;
		const char *enabled;

		sbx_strlcpy(parent, path, sizeof(parent));
		slash = strrchr(parent, '/');
		*slash = '\0';
		enabled = getf("%s/cgroup.subtree_control", parent);
		fake_populate_v2(f, path, enabled ? enabled : "");
		return;
	}
	for (size_t i = 0; i < f->nv1; i++) {
		char mnt[PATH_MAX];
		pf(mnt, sizeof(mnt), "%s%s/", f->root, f->v1[i].mnt);
		if (sbx_str_has_prefix(path, mnt)) {
			fake_populate_v1(path, f->v1[i].ctls, f->swap);
			return;
		}
	}
}

/* A real cgroup directory goes away with its files; a plain one needs them removed first. */
static void fake_on_rmdir(void *ud, const char *path)
{
	struct fake *f = ud;
	DIR *d = opendir(path);
	struct dirent *de;

	f->rmdirs++;
	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_type == DT_REG)
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

static void fake_init(struct fake *f, bool v2)
{
	memset(f, 0, sizeof(*f));
	pf(f->root, sizeof(f->root), "/tmp/sbx-test-cgroup-XXXXXX");
	if (!mkdtemp(f->root))
		abort();
	path_join(f->mountinfo, sizeof(f->mountinfo), f->root, "mountinfo");
	path_join(f->selfcg, sizeof(f->selfcg), f->root, "self_cgroup");
	f->v2 = v2;
	f->swap = true;
	f->has_kill = true;
}

static void fake_free(struct fake *f)
{
	/* Directories a test made unwritable must not stop the removal when we are not root. */
	char cmd[PATH_MAX + 32];
	if (geteuid() != 0) {
		pf(cmd, sizeof(cmd), "chmod -R u+rwx '%s'", f->root);
		if (system(cmd) != 0)
			diag("chmod failed on %s", f->root);
	}
	if (sbx_rm_rf(f->root) < 0)
		diag("cannot remove %s: %s", f->root, strerror(errno));
}

/* Lines every mountinfo has, so the parser must skip them; one with an escaped space. */
static const char mountinfo_head[] =
	"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
	"23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
	"24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw\n"
	"25 22 8:1 /srv /mnt/with\\040space rw,relatime shared:1 - ext4 /dev/sda1 rw\n";

static void fake_v2_tree(struct fake *f, const char *root_controllers, const char *own)
{
	char mnt[PATH_MAX], line[PATH_MAX];

	path_join(mnt, sizeof(mnt), f->root, "sys/fs/cgroup");
	mkdir_p(mnt);
	fake_populate_v2(f, mnt, "");
	put_in(mnt, "cgroup.controllers", root_controllers);
	put_in(mnt, "cgroup.procs", "1\n");
	pf(line, sizeof(line),
		 "%s30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
		 "rw,nsdelegate,memory_recursiveprot\n",
		 mountinfo_head);
	put(f->mountinfo, line);
	pf(line, sizeof(line), "0::%s\n", own);
	put(f->selfcg, line);
}

/* A v1 tree. `hybrid` adds an empty cgroup2 at /sys/fs/cgroup/unified like this project's CI
 * host, and a name=systemd hierarchy, both of which the manager must ignore. */
static void fake_v1_tree(struct fake *f, const struct fake_mount *mounts, size_t n, bool hybrid)
{
	char text[8192], mnt[PATH_MAX];
	int id = 32;

	pf(text, sizeof(text), "%s31 24 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n",
		 mountinfo_head);
	for (size_t i = 0; i < n; i++) {
		f->v1[f->nv1++] = mounts[i];
		pf(mnt, sizeof(mnt), "%s%s", f->root, mounts[i].mnt);
		mkdir_p(mnt);
		fake_populate_v1(mnt, mounts[i].ctls, f->swap);
		if (list_has(mounts[i].ctls, "cpuset", ','))
			put_in(mnt, "cpuset.cpus", "0-1"), put_in(mnt, "cpuset.mems", "0");
		pf(text + strlen(text), sizeof(text) - strlen(text),
			 "%d 31 0:%d / %s rw,nosuid,nodev,noexec,relatime shared:%d - cgroup cgroup rw,%s\n", id, id,
			 mounts[i].mnt, id, mounts[i].ctls);
		id++;
	}
	if (hybrid) {
		pf(mnt, sizeof(mnt), "%s/sys/fs/cgroup/unified", f->root);
		mkdir_p(mnt);
		put_in(mnt, "cgroup.controllers", "hugetlb");
		pf(text + strlen(text), sizeof(text) - strlen(text),
			 "%d 31 0:%d / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n"
			 "%d 31 0:%d / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime - cgroup cgroup "
			 "rw,xattr,name=systemd\n",
			 id, id, id + 1, id + 1);
	}
	put(f->mountinfo, text);
	put(f->selfcg, "4:memory:/process_api/x\n1:cpu:/\n0::/\n");
}

static struct sbx_cgroup_mgr *fake_mgr(struct fake *f, uid_t uid)
{
	struct sbx_cgroup_mgr *m = NULL;
	struct sbx_cgroup_fs_hooks hooks = {.on_mkdir = fake_on_mkdir, .on_rmdir = fake_on_rmdir, .ud = f};
	sbx_err err = SBX_ERR_INIT;

	if (sbx_cgroup_mgr_new_at(&m, f->mountinfo, f->selfcg, f->root, uid, &err) < 0) {
		diag("sbx_cgroup_mgr_new_at: %s", err.msg);
		return NULL;
	}
	sbx_cgroup_mgr_set_fs_hooks(m, &hooks);
	diag("describe: %s", sbx_cgroup_describe(m));
	return m;
}

static const struct sbx_cgroup_limits lim_all = {.memory_bytes = 64 * MIB, .millicpus = 500, .pids = 16};
static const struct sbx_cgroup_limits lim_none = {0};

/* Room for every name: on a real host other sandboxes' cgroups are listed too. */
struct names {
	char v[1024][80];
	int n;
};

static void collect(void *ud, const char *name)
{
	struct names *ns = ud;

	if (ns->n < 1024)
		sbx_strlcpy(ns->v[ns->n++], name, sizeof(ns->v[0]));
}

static bool names_have(const struct names *ns, const char *name)
{
	for (int i = 0; i < ns->n; i++)
		if (strcmp(ns->v[i], name) == 0)
			return true;
	return false;
}

/* A child that only waits to be killed. */
static pid_t spawn_sleeper(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid;
}

static bool killed_by_sigkill(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return false;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

/* ---- Part A ---- */

static void test_v2_root(void)
{
	struct fake f;
	struct sbx_cgroup_mgr *m;
	sbx_err err = SBX_ERR_INIT;
	struct sbx_cgroup_stats st;
	struct names ns = {0};
	char cg[PATH_MAX], pid[24];
	int fd;

	diag("v2, root");
	fake_init(&f, true);
	fake_v2_tree(&f, "cpuset cpu io memory hugetlb pids rdma misc", "/user.slice/user-0.slice/session-1.scope");
	m = fake_mgr(&f, 0);
	ok(m != NULL, "v2 root: manager created");
	if (!m)
		goto out;
	is_int(sbx_cgroup_version(m), SBX_CGROUP_V2, "v2 root: version 2");
	ok(contains(sbx_cgroup_describe(m), "cgroup v2, root"), "v2 root: describe says so");

	is_int(sbx_cgroup_create(m, "box1", &lim_all, E), 0, "v2 root: create with all limits (%s)", err.msg);
	is_str(getf("%s/sys/fs/cgroup/cgroup.subtree_control", f.root), "+memory +cpu +pids",
	       "v2 root: controllers enabled in the root");
	is_str(getf("%s/sys/fs/cgroup/sbx/cgroup.subtree_control", f.root), "+memory +cpu +pids",
	       "v2 root: controllers enabled in sbx/");
	pf(cg, sizeof(cg), "%s/sys/fs/cgroup/sbx/box1", f.root);
	is_str(getf("%s/memory.max", cg), "67108864", "v2 root: memory.max");
	is_str(getf("%s/memory.swap.max", cg), "0", "v2 root: memory.swap.max = 0 (memory+swap = memory)");
	is_str(getf("%s/cpu.max", cg), "50000 100000", "v2 root: cpu.max for 0.5 CPUs");
	is_str(getf("%s/pids.max", cg), "16", "v2 root: pids.max");
	is_str(getf("%s/memory.oom.group", cg), "0", "v2 root: memory.oom.group left at 0 (per-process OOM kill)");

	fd = sbx_cgroup_open_dir(m, "box1");
	ok(fd >= 0, "v2 root: open_dir gives an fd for CLONE_INTO_CGROUP");
	if (fd >= 0)
		close(fd);
	ok(sbx_cgroup_open_dir(m, "nope") < 0 && errno == ENOENT, "v2 root: open_dir of a missing cgroup fails");

	/* Our own pid in the sandbox cgroup: kill must refuse rather than write cgroup.kill. */
	is_int(sbx_cgroup_attach(m, "box1", getpid(), E), 0, "v2 root: attach writes cgroup.procs");
	pf(pid, sizeof(pid), "%d", (int)getpid());
	is_str(getf("%s/cgroup.procs", cg), pid, "v2 root: cgroup.procs holds the pid");
	ok(sbx_cgroup_kill(m, "box1", E) < 0 && contains(err.msg, "sbxd itself"),
	   "v2 root: kill refuses a cgroup that holds sbxd (%s)", err.msg);
	is_str(getf("%s/cgroup.kill", cg), "", "v2 root: cgroup.kill not written then");
	put_in(cg, "cgroup.procs", "");
	is_int(sbx_cgroup_kill(m, "box1", E), 0, "v2 root: kill of an empty cgroup");

	put_in(cg, "memory.current", "12345\n");
	put_in(cg, "pids.current", "3\n");
	put_in(cg, "memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 2\noom_group_kill 0\n");
	is_int(sbx_cgroup_stats(m, "box1", &st), 0, "v2 root: stats");
	ok(st.memory_current == 12345 && st.pids_current == 3 && st.oom_killed,
	   "v2 root: stats values (memory %" PRIu64 ", pids %" PRIu64 ", oom %d)", st.memory_current, st.pids_current,
	   st.oom_killed);

	is_int(sbx_cgroup_create(m, "box2", &lim_none, E), 0, "v2 root: create without limits");
	is_str(getf("%s/sys/fs/cgroup/sbx/box2/pids.max", f.root), "max", "v2 root: box2 pids.max untouched");
	is_int(sbx_cgroup_list(m, collect, &ns), 2, "v2 root: list finds two");
	ok(names_have(&ns, "box1") && names_have(&ns, "box2"), "v2 root: list names");

	/* Reuse after a crash: the old limits must not survive. */
	is_int(sbx_cgroup_create(m, "box1", &lim_none, E), 0, "v2 root: create over a leftover cgroup");
	is_str(getf("%s/memory.max", cg), "max", "v2 root: reused memory.max reset");
	is_str(getf("%s/memory.swap.max", cg), "max", "v2 root: reused memory.swap.max reset");
	is_str(getf("%s/cpu.max", cg), "max", "v2 root: reused cpu.max reset");
	is_str(getf("%s/pids.max", cg), "max", "v2 root: reused pids.max reset");

	is_int(sbx_cgroup_destroy(m, "box1", E), 0, "v2 root: destroy");
	ok(!existsf("%s", cg), "v2 root: directory gone");
	is_int(sbx_cgroup_destroy(m, "box1", E), 0, "v2 root: destroy of a missing cgroup is fine");
	ok(sbx_cgroup_stats(m, "box1", &st) < 0 && errno == ENOENT, "v2 root: stats of a missing cgroup: ENOENT");
	ok(sbx_cgroup_attach(m, "box1", getpid(), E) < 0 && err.code == SBX_E_NOTFOUND,
	   "v2 root: attach to a missing cgroup: not found");
	is_int(sbx_cgroup_destroy(m, "box2", E), 0, "v2 root: destroy box2");
	sbx_cgroup_mgr_free(m);
out:
	fake_free(&f);

	/* Only the controllers the limits need (pids always). */
	fake_init(&f, true);
	fake_v2_tree(&f, "cpuset cpu io memory pids", "/");
	m = fake_mgr(&f, 0);
	if (m) {
		struct sbx_cgroup_limits lim = {.memory_bytes = 512 * MIB};
		is_int(sbx_cgroup_create(m, "m", &lim, E), 0, "v2 root: memory-only create (%s)", err.msg);
		is_str(getf("%s/sys/fs/cgroup/sbx/cgroup.subtree_control", f.root), "+memory +pids",
		       "v2 root: cpu not enabled when no CPU limit is asked for");
		ok(!existsf("%s/sys/fs/cgroup/sbx/m/cpu.max", f.root), "v2 root: so the cgroup has no cpu files");
		is_int(sbx_cgroup_destroy(m, "m", E), 0, "v2 root: destroy");
		sbx_cgroup_mgr_free(m);
	}
	fake_free(&f);
}

static void test_v2_delegated(void)
{
	static const char own[] = "/user.slice/user-1000.slice/user@1000.service/app.slice/sbxd.service";
	struct fake f;
	struct sbx_cgroup_mgr *m;
	sbx_err err = SBX_ERR_INIT;
	struct names ns = {0};
	char dir[PATH_MAX], pid[24];
	struct sbx_cgroup_limits lim = {.memory_bytes = 64 * MIB, .pids = 32};
	struct sbx_cgroup_limits cpu = {.millicpus = 1500};

	diag("v2, delegated to uid %u", (unsigned)test_uid());
	pf(pid, sizeof(pid), "%d", (int)getpid());
	fake_init(&f, true);
	fake_v2_tree(&f, "cpuset cpu io memory pids", own);
	pf(dir, sizeof(dir), "%s/sys/fs/cgroup%s", f.root, own);
	mkdir_p(dir);
	fake_populate_v2(&f, dir, "memory pids");
	put_in(dir, "cgroup.procs", "");
	put_in(dir, "cgroup.procs", pid); /* just us, as in a unit of our own */
	give_to_test_uid(dir);

	m = fake_mgr(&f, test_uid());
	ok(m != NULL, "v2 delegated: manager created");
	if (!m)
		goto out;
	is_int(sbx_cgroup_version(m), SBX_CGROUP_V2, "v2 delegated: version 2");
	ok(contains(sbx_cgroup_describe(m), "delegated") && contains(sbx_cgroup_describe(m), "cpu not available") &&
		   contains(sbx_cgroup_describe(m), "Delegate="),
	   "v2 delegated: describe names the missing cpu controller and the fix");
	ok(!existsf("%s/sbxd", dir), "v2 delegated: detection alone moves nothing");

	is_int(sbx_cgroup_create(m, "b", &lim, E), 0, "v2 delegated: create (%s)", err.msg);
	ok(existsf("%s/sbxd", dir), "v2 delegated: leaf sbxd created");
	is_str(getf("%s/sbxd/cgroup.procs", dir), pid, "v2 delegated: the daemon moved itself into the leaf");
	is_str(getf("%s/cgroup.subtree_control", dir), "+memory +pids",
	       "v2 delegated: controllers enabled in our own cgroup, after the move");
	is_str(getf("%s/sbx-b/memory.max", dir), "67108864", "v2 delegated: memory.max in <own>/sbx-b");
	is_str(getf("%s/sbx-b/memory.swap.max", dir), "0", "v2 delegated: memory.swap.max");
	is_str(getf("%s/sbx-b/pids.max", dir), "32", "v2 delegated: pids.max");

	ok(sbx_cgroup_create(m, "c", &cpu, E) < 0 && err.code == SBX_E_UNSUPPORTED &&
		   contains(err.msg, "cpu controller") && contains(err.msg, "Delegate="),
	   "v2 delegated: a CPU limit without the cpu controller is refused (%s)", err.msg);
	ok(!existsf("%s/sbx-c", dir), "v2 delegated: and nothing was created for it");

	is_int(sbx_cgroup_list(m, collect, &ns), 1, "v2 delegated: list skips sbxd");
	ok(names_have(&ns, "b"), "v2 delegated: list gives the sandbox name without the prefix");
	is_int(sbx_cgroup_destroy(m, "b", E), 0, "v2 delegated: destroy");
	ok(!existsf("%s/sbx-b", dir), "v2 delegated: gone");
	sbx_cgroup_mgr_free(m);

	/* A restarted daemon that inherited the leaf: same parent, no sbxd/sbxd. */
	{
		char line[PATH_MAX];
		pf(line, sizeof(line), "0::%s/sbxd\n", own);
		put(f.selfcg, line);
		m = fake_mgr(&f, test_uid());
		ok(m && sbx_cgroup_version(m) == SBX_CGROUP_V2, "v2 delegated: manager from inside sbxd");
		if (m) {
			is_int(sbx_cgroup_create(m, "r", &lim, E), 0, "v2 delegated: create after restart");
			ok(existsf("%s/sbx-r", dir) && !existsf("%s/sbxd/sbxd", dir),
			   "v2 delegated: sandbox next to sbxd, not inside");
			is_int(sbx_cgroup_destroy(m, "r", E), 0, "v2 delegated: destroy");
			sbx_cgroup_mgr_free(m);
		}
		pf(line, sizeof(line), "0::%s\n", own);
		put(f.selfcg, line);
	}

	/* Someone else's process in our cgroup: it cannot become an inner node. */
	{
		char procs[64];
		pf(procs, sizeof(procs), "%s\n1\n", pid);
		rmdir(dir); /* fails (not empty); the files below are what matter */
		put_in(dir, "cgroup.subtree_control", "");
		put_in(dir, "cgroup.procs", procs);
		m = fake_mgr(&f, test_uid());
		ok(m && sbx_cgroup_version(m) == SBX_CGROUP_NONE &&
			   contains(sbx_cgroup_describe(m), "other processes"),
		   "v2 delegated: a cgroup shared with other processes gives NONE with the reason");
		sbx_cgroup_mgr_free(m);
	}
out:
	fake_free(&f);

	/* Not delegated: our cgroup is not ours to write. */
	fake_init(&f, true);
	fake_v2_tree(&f, "cpuset cpu io memory pids", own);
	pf(dir, sizeof(dir), "%s/sys/fs/cgroup%s", f.root, own);
	mkdir_p(dir);
	fake_populate_v2(&f, dir, "memory pids");
	if (geteuid() != 0)
		chmod(dir, 0555); /* as root: left owned by root, which uid 1000 cannot write */
	m = fake_mgr(&f, test_uid());
	ok(m != NULL, "v2 not delegated: manager still created");
	if (m) {
		is_int(sbx_cgroup_version(m), SBX_CGROUP_NONE, "v2 not delegated: version NONE");
		ok(contains(sbx_cgroup_describe(m), "not delegated") &&
			   contains(sbx_cgroup_describe(m), "systemd-run --user -p Delegate=yes"),
		   "v2 not delegated: describe gives the fix");
		ok(sbx_cgroup_create(m, "x", &lim, E) < 0 && err.code == SBX_E_UNSUPPORTED &&
			   contains(err.msg, "memory limit"),
		   "v2 not delegated: a memory limit is refused (%s)", err.msg);
		is_int(sbx_cgroup_create(m, "x", &lim_none, E), 0, "v2 not delegated: no limits asked: fine");
		ok(sbx_cgroup_open_dir(m, "x") < 0, "v2 not delegated: no cgroup fd");
		sbx_cgroup_mgr_free(m);
	}
	fake_free(&f);
}

static const struct fake_mount hybrid_mounts[] = {
	{"/sys/fs/cgroup/cpu", "cpu"},         {"/sys/fs/cgroup/cpuacct", "cpuacct"},
	{"/sys/fs/cgroup/cpuset", "cpuset"},   {"/sys/fs/cgroup/memory", "memory"},
	{"/sys/fs/cgroup/devices", "devices"}, {"/sys/fs/cgroup/freezer", "freezer"},
	{"/sys/fs/cgroup/blkio", "blkio"},     {"/sys/fs/cgroup/pids", "pids"},
};

static void test_v1_root(void)
{
	struct fake f;
	struct sbx_cgroup_mgr *m;
	sbx_err err = SBX_ERR_INIT;
	struct sbx_cgroup_stats st;
	struct names ns = {0};
	char c[PATH_MAX];
	const char *r = NULL;
	pid_t child;
	uint64_t t0;
	int rc;

	diag("v1 (hybrid), root, separate hierarchies");
	fake_init(&f, false);
	fake_v1_tree(&f, hybrid_mounts, SBX_ARRAY_LEN(hybrid_mounts), true);
	m = fake_mgr(&f, 0);
	ok(m != NULL, "v1 root: manager created");
	if (!m)
		goto out;
	r = f.root;
	is_int(sbx_cgroup_version(m), SBX_CGROUP_V1, "v1 root: hybrid layout uses v1");
	ok(contains(sbx_cgroup_describe(m), "hybrid"), "v1 root: describe says hybrid");
	is_int(sbx_cgroup_create(m, "box", &lim_all, E), 0, "v1 root: create with all limits (%s)", err.msg);
	is_str(getf("%s/sys/fs/cgroup/memory/sbx/box/memory.limit_in_bytes", r), "67108864",
	       "v1 root: memory.limit_in_bytes");
	is_str(getf("%s/sys/fs/cgroup/memory/sbx/box/memory.memsw.limit_in_bytes", r), "67108864",
	       "v1 root: memory.memsw.limit_in_bytes = the memory limit");
	is_str(getf("%s/sys/fs/cgroup/cpu/sbx/box/cpu.cfs_period_us", r), "100000", "v1 root: cfs period");
	is_str(getf("%s/sys/fs/cgroup/cpu/sbx/box/cpu.cfs_quota_us", r), "50000", "v1 root: cfs quota");
	is_str(getf("%s/sys/fs/cgroup/pids/sbx/box/pids.max", r), "16", "v1 root: pids.max");
	ok(existsf("%s/sys/fs/cgroup/freezer/sbx/box/freezer.state", r), "v1 root: freezer cgroup for kill");
	ok(!existsf("%s/sys/fs/cgroup/cpuacct/sbx", r) && !existsf("%s/sys/fs/cgroup/cpuset/sbx", r) &&
		   !existsf("%s/sys/fs/cgroup/blkio/sbx", r) && !existsf("%s/sys/fs/cgroup/devices/sbx", r) &&
		   !existsf("%s/sys/fs/cgroup/systemd/sbx", r) && !existsf("%s/sys/fs/cgroup/unified/sbx", r),
	   "v1 root: no other hierarchy touched");
	ok(sbx_cgroup_open_dir(m, "box") < 0 && errno == EOPNOTSUPP, "v1 root: no CLONE_INTO_CGROUP fd on v1");

	/* A real child listed in the (fake) cgroup: kill must SIGKILL it through the freezer; since
	 * a plain file never empties, it then gives up after ~2 s with an error. */
	child = spawn_sleeper();
	is_int(sbx_cgroup_attach(m, "box", child, E), 0, "v1 root: attach");
	pf(c, sizeof(c), "%d", (int)child);
	ok(strcmp(getf("%s/sys/fs/cgroup/memory/sbx/box/cgroup.procs", r), c) == 0 &&
		   strcmp(getf("%s/sys/fs/cgroup/cpu/sbx/box/cgroup.procs", r), c) == 0 &&
		   strcmp(getf("%s/sys/fs/cgroup/pids/sbx/box/cgroup.procs", r), c) == 0 &&
		   strcmp(getf("%s/sys/fs/cgroup/freezer/sbx/box/cgroup.procs", r), c) == 0,
	   "v1 root: attach writes every hierarchy");
	pf(c, sizeof(c), "%s/sys/fs/cgroup/pids/sbx/box", r);
	{
		char procs[64];
		pf(procs, sizeof(procs), "0\n%d\n", (int)child); /* 0 = a pid we cannot see: never kill(0) */
		put_in(c, "cgroup.procs", procs);
	}
	t0 = sbx_monotonic_ms();
	rc = sbx_cgroup_kill(m, "box", E);
	ok(rc < 0 && contains(err.msg, "still alive"), "v1 root: kill reports processes that do not go (%s)", err.msg);
	ok(sbx_monotonic_ms() - t0 >= 1900 && sbx_monotonic_ms() - t0 < 4000, "v1 root: after about 2 s (%" PRIu64
	   " ms)", sbx_monotonic_ms() - t0);
	ok(killed_by_sigkill(child), "v1 root: the listed process got SIGKILL");
	is_str(getf("%s/sys/fs/cgroup/freezer/sbx/box/freezer.state", r), "THAWED", "v1 root: freezer thawed again");
	static const char *const hiers[] = {"memory", "cpu", "pids", "freezer"};
	for (size_t i = 0; i < SBX_ARRAY_LEN(hiers); i++) {
		pf(c, sizeof(c), "%s/sys/fs/cgroup/%s/sbx/box", r, hiers[i]);
		put_in(c, "cgroup.procs", "");
	}
	is_int(sbx_cgroup_kill(m, "box", E), 0, "v1 root: kill of an empty cgroup");

	pf(c, sizeof(c), "%s/sys/fs/cgroup/memory/sbx/box", r);
	put_in(c, "memory.usage_in_bytes", "4096\n");
	put_in(c, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
	pf(c, sizeof(c), "%s/sys/fs/cgroup/pids/sbx/box", r);
	put_in(c, "pids.current", "5\n");
	ok(sbx_cgroup_stats(m, "box", &st) == 0 && st.memory_current == 4096 && st.pids_current == 5 && st.oom_killed,
	   "v1 root: stats from memory.usage_in_bytes, pids.current, memory.oom_control");
	pf(c, sizeof(c), "%s/sys/fs/cgroup/memory/sbx/box", r);
	put_in(c, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");
	put_in(c, "memory.failcnt", "3\n");
	ok(sbx_cgroup_stats(m, "box", &st) == 0 && st.oom_killed, "v1 root: old kernels: memory.failcnt as the hint");

	is_int(sbx_cgroup_create(m, "small", &lim_none, E), 0, "v1 root: create without limits");
	ok(existsf("%s/sys/fs/cgroup/pids/sbx/small", r) && existsf("%s/sys/fs/cgroup/freezer/sbx/small", r) &&
		   !existsf("%s/sys/fs/cgroup/memory/sbx/small", r) && !existsf("%s/sys/fs/cgroup/cpu/sbx/small", r),
	   "v1 root: only pids and freezer when no limit is asked for");
	is_str(getf("%s/sys/fs/cgroup/pids/sbx/small/pids.max", r), "max", "v1 root: pids.max untouched");

	is_int(sbx_cgroup_list(m, collect, &ns), 2, "v1 root: list gives each sandbox once");
	ok(names_have(&ns, "box") && names_have(&ns, "small"), "v1 root: list names");

	/* Reuse after a crash with other limits: the memory part is no longer wanted. */
	{
		struct sbx_cgroup_limits lim = {.millicpus = 1000};
		is_int(sbx_cgroup_create(m, "box", &lim, E), 0, "v1 root: create over a leftover (%s)", err.msg);
		ok(!existsf("%s/sys/fs/cgroup/memory/sbx/box", r), "v1 root: stale memory cgroup removed");
		is_str(getf("%s/sys/fs/cgroup/cpu/sbx/box/cpu.cfs_quota_us", r), "100000", "v1 root: new quota");
		is_str(getf("%s/sys/fs/cgroup/pids/sbx/box/pids.max", r), "max", "v1 root: old pids limit reset");
	}
	is_int(sbx_cgroup_destroy(m, "box", E), 0, "v1 root: destroy box");
	is_int(sbx_cgroup_destroy(m, "small", E), 0, "v1 root: destroy small");
	ok(!existsf("%s/sys/fs/cgroup/cpu/sbx/box", r) && !existsf("%s/sys/fs/cgroup/pids/sbx/box", r) &&
		   !existsf("%s/sys/fs/cgroup/freezer/sbx/box", r) && !existsf("%s/sys/fs/cgroup/pids/sbx/small", r),
	   "v1 root: all gone");
	sbx_cgroup_mgr_free(m);
out:
	fake_free(&f);

	/* Without swap accounting there is no memsw: the memory limit alone, no failure. */
	fake_init(&f, false);
	f.swap = false;
	fake_v1_tree(&f, hybrid_mounts, SBX_ARRAY_LEN(hybrid_mounts), false);
	m = fake_mgr(&f, 0);
	if (m) {
		ok(!contains(sbx_cgroup_describe(m), "hybrid"), "v1 legacy: describe does not say hybrid");
		is_int(sbx_cgroup_create(m, "s", &lim_all, E), 0, "v1 no swap accounting: create (%s)", err.msg);
		is_str(getf("%s/sys/fs/cgroup/memory/sbx/s/memory.limit_in_bytes", f.root), "67108864",
		       "v1 no swap accounting: memory limit set");
		is_int(sbx_cgroup_destroy(m, "s", E), 0, "v1 no swap accounting: destroy");
		sbx_cgroup_mgr_free(m);
	}
	fake_free(&f);
}

static void test_v1_comounted(void)
{
	static const struct fake_mount mounts[] = {
		{"/sys/fs/cgroup/cpu,cpuacct", "cpu,cpuacct"},
		{"/sys/fs/cgroup/memory", "memory"},
		{"/sys/fs/cgroup/pids", "pids"},
		{"/sys/fs/cgroup/net_cls,net_prio", "net_cls,net_prio"},
	};
	static const struct fake_mount with_cpuset[] = {
		{"/sys/fs/cgroup/cpuset,cpu,cpuacct", "cpuset,cpu,cpuacct"},
		{"/sys/fs/cgroup/memory", "memory"},
	};
	struct fake f;
	struct sbx_cgroup_mgr *m;
	sbx_err err = SBX_ERR_INIT;
	struct names ns = {0};

	diag("v1, root, co-mounted cpu,cpuacct");
	fake_init(&f, false);
	fake_v1_tree(&f, mounts, SBX_ARRAY_LEN(mounts), false);
	m = fake_mgr(&f, 0);
	ok(m && sbx_cgroup_version(m) == SBX_CGROUP_V1, "v1 co-mounted: version 1");
	if (m) {
		is_int(sbx_cgroup_create(m, "cc", &lim_all, E), 0, "v1 co-mounted: create (%s)", err.msg);
		is_str(getf("%s/sys/fs/cgroup/cpu,cpuacct/sbx/cc/cpu.cfs_quota_us", f.root), "50000",
		       "v1 co-mounted: quota in the cpu,cpuacct hierarchy");
		ok(!existsf("%s/sys/fs/cgroup/net_cls,net_prio/sbx", f.root), "v1 co-mounted: net_cls untouched");
		is_int(sbx_cgroup_list(m, collect, &ns), 1, "v1 co-mounted: listed once");
		is_int(sbx_cgroup_destroy(m, "cc", E), 0, "v1 co-mounted: destroy");
		ok(!existsf("%s/sys/fs/cgroup/cpu,cpuacct/sbx/cc", f.root), "v1 co-mounted: gone");
		sbx_cgroup_mgr_free(m);
	}
	fake_free(&f);

	diag("v1, root, cpu co-mounted with cpuset");
	fake_init(&f, false);
	fake_v1_tree(&f, with_cpuset, SBX_ARRAY_LEN(with_cpuset), false);
	m = fake_mgr(&f, 0);
	ok(m != NULL, "v1 cpuset: manager created");
	if (m) {
		is_int(sbx_cgroup_version(m), SBX_CGROUP_V1, "v1 cpuset: version 1 without a pids hierarchy");
		is_int(sbx_cgroup_create(m, "cs", &lim_all, E) < 0 && err.code == SBX_E_UNSUPPORTED, 1,
		       "v1 cpuset: a pids limit without a pids hierarchy is refused");
		ok(contains(err.msg, "pids controller"), "v1 cpuset: naming pids (%s)", err.msg);
		struct sbx_cgroup_limits lim = {.memory_bytes = 64 * MIB, .millicpus = 250};
		is_int(sbx_cgroup_create(m, "cs", &lim, E), 0, "v1 cpuset: create without pids (%s)", err.msg);
		is_str(getf("%s/sys/fs/cgroup/cpuset,cpu,cpuacct/sbx/cpuset.cpus", f.root), "0-1",
		       "v1 cpuset: sbx/ gets the parent's cpus");
		is_str(getf("%s/sys/fs/cgroup/cpuset,cpu,cpuacct/sbx/cs/cpuset.cpus", f.root), "0-1",
		       "v1 cpuset: the sandbox gets them too");
		is_str(getf("%s/sys/fs/cgroup/cpuset,cpu,cpuacct/sbx/cs/cpuset.mems", f.root), "0",
		       "v1 cpuset: and the mems");
		is_str(getf("%s/sys/fs/cgroup/cpuset,cpu,cpuacct/sbx/cs/cpu.cfs_quota_us", f.root), "25000",
		       "v1 cpuset: quota for 0.25 CPUs");
		is_int(sbx_cgroup_destroy(m, "cs", E), 0, "v1 cpuset: destroy");
		sbx_cgroup_mgr_free(m);
	}
	fake_free(&f);
}

static void test_v1_delegated(void)
{
	struct fake f;
	struct sbx_cgroup_mgr *m;
	sbx_err err = SBX_ERR_INIT;
	char d[PATH_MAX];
	unsigned uid = (unsigned)test_uid();
	static const char *const delegated[] = {"memory", "cpu", "pids", "freezer"};

	diag("v1, delegated to uid %u", uid);
	fake_init(&f, false);
	fake_v1_tree(&f, hybrid_mounts, SBX_ARRAY_LEN(hybrid_mounts), true);
	for (size_t i = 0; i < SBX_ARRAY_LEN(delegated); i++) {
		pf(d, sizeof(d), "%s/sys/fs/cgroup/%s/sbx-%u", f.root, delegated[i], uid);
		mkdir_p(d);
		give_to_test_uid(d);
	}
	m = fake_mgr(&f, test_uid());
	ok(m && sbx_cgroup_version(m) == SBX_CGROUP_V1, "v1 delegated: version 1");
	if (m) {
		ok(contains(sbx_cgroup_describe(m), "delegated"), "v1 delegated: describe says delegated");
		is_int(sbx_cgroup_create(m, "u", &lim_all, E), 0, "v1 delegated: create (%s)", err.msg);
		is_str(getf("%s/sys/fs/cgroup/memory/sbx-%u/u/memory.limit_in_bytes", f.root, uid), "67108864",
		       "v1 delegated: memory limit under sbx-<uid>");
		is_str(getf("%s/sys/fs/cgroup/cpu/sbx-%u/u/cpu.cfs_quota_us", f.root, uid), "50000",
		       "v1 delegated: quota under sbx-<uid>");
		is_str(getf("%s/sys/fs/cgroup/pids/sbx-%u/u/pids.max", f.root, uid), "16",
		       "v1 delegated: pids under sbx-<uid>");
		ok(existsf("%s/sys/fs/cgroup/freezer/sbx-%u/u", f.root, uid), "v1 delegated: freezer under sbx-<uid>");
		ok(!existsf("%s/sys/fs/cgroup/memory/sbx", f.root), "v1 delegated: no root-style sbx/");
		is_int(sbx_cgroup_destroy(m, "u", E), 0, "v1 delegated: destroy");
		ok(!existsf("%s/sys/fs/cgroup/memory/sbx-%u/u", f.root, uid) &&
			   existsf("%s/sys/fs/cgroup/memory/sbx-%u", f.root, uid),
		   "v1 delegated: sandbox gone, delegated parent kept");
		sbx_cgroup_mgr_free(m);
	}

	/* The freezer is optional: without it, still v1, and describe says what is lost. */
	pf(d, sizeof(d), "%s/sys/fs/cgroup/freezer/sbx-%u", f.root, uid);
	rmdir(d);
	m = fake_mgr(&f, test_uid());
	ok(m && sbx_cgroup_version(m) == SBX_CGROUP_V1 && contains(sbx_cgroup_describe(m), "no freezer"),
	   "v1 delegated without freezer: still v1, describe notes it");
	sbx_cgroup_mgr_free(m);
	fake_free(&f);
}

static void test_v1_not_delegated(void)
{
	struct fake f;
	struct sbx_cgroup_mgr *m;
	sbx_err err = SBX_ERR_INIT;
	char d[PATH_MAX], want[PATH_MAX];
	unsigned uid = (unsigned)test_uid();
	struct sbx_cgroup_limits mem = {.memory_bytes = 64 * MIB};

	diag("v1, not delegated to uid %u", uid);
	fake_init(&f, false);
	fake_v1_tree(&f, hybrid_mounts, SBX_ARRAY_LEN(hybrid_mounts), true);
	/* Only memory delegated; pids there but not writable by the user. */
	pf(d, sizeof(d), "%s/sys/fs/cgroup/memory/sbx-%u", f.root, uid);
	mkdir_p(d);
	give_to_test_uid(d);
	pf(d, sizeof(d), "%s/sys/fs/cgroup/pids/sbx-%u", f.root, uid);
	mkdir_p(d);
	if (geteuid() != 0)
		chmod(d, 0555);
	m = fake_mgr(&f, test_uid());
	ok(m != NULL, "v1 not delegated: manager created");
	if (m) {
		const char *why = sbx_cgroup_describe(m);
		is_int(sbx_cgroup_version(m), SBX_CGROUP_NONE, "v1 not delegated: version NONE");
		pf(want, sizeof(want), "chown -R %u", uid);
		ok(contains(why, "ask root to delegate: mkdir -p") && contains(why, want),
		   "v1 not delegated: describe gives the commands");
		pf(want, sizeof(want), "/sys/fs/cgroup/cpu/sbx-%u", uid);
		ok(contains(why, want), "v1 not delegated: names the cpu directory");
		pf(want, sizeof(want), "/sys/fs/cgroup/pids/sbx-%u", uid);
		ok(contains(why, want), "v1 not delegated: names the unwritable pids directory");
		pf(want, sizeof(want), "/sys/fs/cgroup/memory/sbx-%u", uid);
		ok(!contains(why, want), "v1 not delegated: not the memory one, which is fine");
		ok(sbx_cgroup_create(m, "n", &mem, E) < 0 && err.code == SBX_E_UNSUPPORTED &&
			   contains(err.msg, "memory limit") && contains(err.msg, "ask root to delegate"),
		   "v1 not delegated: a limit is refused with the fix (%s)", err.msg);
		is_int(sbx_cgroup_create(m, "n", &lim_none, E), 0, "v1 not delegated: no limits: fine");
		is_int(sbx_cgroup_attach(m, "n", getpid(), E), 0, "v1 not delegated: attach is a no-op");
		is_int(sbx_cgroup_kill(m, "n", E), 0, "v1 not delegated: kill is a no-op");
		is_int(sbx_cgroup_destroy(m, "n", E), 0, "v1 not delegated: destroy is a no-op");
		ok(sbx_cgroup_stats(m, "n", &(struct sbx_cgroup_stats){0}) < 0, "v1 not delegated: no stats");
		sbx_cgroup_mgr_free(m);
	}
	fake_free(&f);
}

static void test_missing(void)
{
	static const struct fake_mount no_pids[] = {
		{"/sys/fs/cgroup/memory", "memory"},
		{"/sys/fs/cgroup/cpu,cpuacct", "cpu,cpuacct"},
	};
	struct fake f;
	struct sbx_cgroup_mgr *m;
	sbx_err err = SBX_ERR_INIT;
	struct sbx_cgroup_limits cpu = {.millicpus = 2000}, pids = {.pids = 64}, tiny = {.millicpus = 5};

	diag("requested limits whose controller is missing");
	fake_init(&f, false);
	fake_v1_tree(&f, no_pids, SBX_ARRAY_LEN(no_pids), false);
	m = fake_mgr(&f, 0);
	if (m) {
		ok(sbx_cgroup_create(m, "p", &pids, E) < 0 && err.code == SBX_E_UNSUPPORTED &&
			   contains(err.msg, "pids controller is not available"),
		   "v1 without pids: pids limit refused (%s)", err.msg);
		ok(!existsf("%s/sys/fs/cgroup/memory/sbx", f.root), "v1 without pids: nothing created");
		is_int(sbx_cgroup_create(m, "p", &cpu, E), 0, "v1 without pids: other limits work");
		is_int(sbx_cgroup_destroy(m, "p", E), 0, "v1 without pids: destroy");
		ok(sbx_cgroup_create(m, "p", &tiny, E) < 0 && err.code == SBX_E_INVALID,
		   "CPU limit below the kernel's minimum refused (%s)", err.msg);
		sbx_cgroup_mgr_free(m);
	}
	fake_free(&f);

	fake_init(&f, true);
	fake_v2_tree(&f, "memory pids", "/");
	m = fake_mgr(&f, 0);
	if (m) {
		ok(sbx_cgroup_create(m, "c", &cpu, E) < 0 && err.code == SBX_E_UNSUPPORTED &&
			   contains(err.msg, "cpu controller") && contains(err.msg, "CPU limit"),
		   "v2 without cpu: CPU limit refused (%s)", err.msg);
		ok(!existsf("%s/sys/fs/cgroup/sbx/c", f.root), "v2 without cpu: nothing created");
		sbx_cgroup_mgr_free(m);
	}
	fake_free(&f);

	/* A v2 cgroup whose limit file is missing although the controller was enabled. */
	fake_init(&f, true);
	fake_v2_tree(&f, "memory pids", "/");
	m = fake_mgr(&f, 0);
	if (m) {
		char p[PATH_MAX];
		struct sbx_cgroup_limits mem = {.memory_bytes = 64 * MIB};
		pf(p, sizeof(p), "%s/sys/fs/cgroup/sbx", f.root);
		mkdir_p(p);
		fake_populate_v2(&f, p, "memory pids");
		put_in(p, "cgroup.subtree_control", "memory pids");
		pf(p, sizeof(p), "%s/sys/fs/cgroup/sbx/gone", f.root);
		mkdir_p(p);
		fake_populate_v2(&f, p, "pids");
		ok(sbx_cgroup_create(m, "gone", &mem, E) < 0 && err.code == SBX_E_UNSUPPORTED &&
			   contains(err.msg, "memory.max is missing"),
		   "v2: a missing memory.max fails closed (%s)", err.msg);
		sbx_cgroup_mgr_free(m);
	}
	fake_free(&f);

	fake_init(&f, false);
	put(f.mountinfo, mountinfo_head);
	put(f.selfcg, "0::/\n");
	m = fake_mgr(&f, 0);
	ok(m && sbx_cgroup_version(m) == SBX_CGROUP_NONE &&
		   contains(sbx_cgroup_describe(m), "no cgroup file system is mounted"),
	   "no cgroupfs at all: NONE with the reason");
	if (m) {
		ok(sbx_cgroup_create(m, "x", &lim_all, E) < 0 && err.code == SBX_E_UNSUPPORTED,
		   "no cgroupfs: limits refused (%s)", err.msg);
	}
	sbx_cgroup_mgr_free(m);
	fake_free(&f);

	{
		struct sbx_cgroup_mgr *mm = NULL;
		ok(sbx_cgroup_mgr_new_at(&mm, "/nonexistent/mountinfo", "/nonexistent/cgroup", "", 0, &err) < 0 &&
			   err.code == SBX_E_IO,
		   "unreadable mountinfo is an error, not NONE");
	}
}

/* A name as a TAP line can show it: control characters would end the line. */
static const char *vis(const char *s)
{
	static char out[256];
	size_t o = 0;

	for (; *s && o + 5 < sizeof(out); s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c >= 0x7f)
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

static void test_names(void)
{
	static const char *const bad[] = {
		"", ".", "..", "a/b", "../x", "a b", "x\n", "héllo", "a:b", "*",
		"0123456789012345678901234567890123456789012345678901234567890123x", /* 65 */
	};
	static const char *const good[] = {
		"a", "A.b_c-9", "...", "-x", "0123456789012345678901234567890123456789012345678901234567890123", /* 64 */
	};
	struct fake f;
	struct sbx_cgroup_mgr *m;
	sbx_err err = SBX_ERR_INIT;
	struct sbx_cgroup_stats st;

	diag("name validation");
	fake_init(&f, true);
	fake_v2_tree(&f, "cpu memory pids", "/");
	m = fake_mgr(&f, 0);
	if (!m) {
		fake_free(&f);
		return;
	}
	for (size_t i = 0; i < SBX_ARRAY_LEN(bad); i++) {
		bool all = true;
		all &= sbx_cgroup_create(m, bad[i], &lim_none, E) < 0 && err.code == SBX_E_INVALID;
		all &= sbx_cgroup_attach(m, bad[i], getpid(), E) < 0 && err.code == SBX_E_INVALID;
		all &= sbx_cgroup_kill(m, bad[i], E) < 0 && err.code == SBX_E_INVALID;
		all &= sbx_cgroup_destroy(m, bad[i], E) < 0 && err.code == SBX_E_INVALID;
		all &= sbx_cgroup_stats(m, bad[i], &st) < 0 && errno == EINVAL;
		all &= sbx_cgroup_open_dir(m, bad[i]) < 0 && errno == EINVAL;
		ok(all, "name '%s' refused by every entry point", vis(bad[i]));
	}
	ok(sbx_cgroup_create(m, NULL, &lim_none, E) < 0 && err.code == SBX_E_INVALID, "NULL name refused");
	ok(!existsf("%s/sys/fs/cgroup/sbx/a", f.root) && !existsf("%s/sys/fs/cgroup/b", f.root),
	   "nothing created for bad names");
	for (size_t i = 0; i < SBX_ARRAY_LEN(good); i++) {
		bool all = sbx_cgroup_create(m, good[i], &lim_none, E) == 0 &&
			   existsf("%s/sys/fs/cgroup/sbx/%s", f.root, good[i]) &&
			   sbx_cgroup_destroy(m, good[i], E) == 0 &&
			   !existsf("%s/sys/fs/cgroup/sbx/%s", f.root, good[i]);
		ok(all, "name '%s' accepted (%s)", good[i], err.msg);
	}
	/* A name that is an interface file of the parent cgroup. */
	ok(sbx_cgroup_create(m, "cgroup.procs", &lim_none, E) < 0 && err.code == SBX_E_INVALID,
	   "a name that collides with an interface file is refused (%s)", err.msg);
	ok(existsf("%s/sys/fs/cgroup/sbx/cgroup.procs", f.root), "and the file is left alone");
	sbx_cgroup_mgr_free(m);
	fake_free(&f);
}

/* ---- Part B: real cgroups ---- */

static void skip(const char *why)
{
	ok(1, "real cgroups # SKIP %s", why);
}

/* The sandbox parents that exist now, to remove those we created at the end. */
struct parents {
	char v[16][PATH_MAX];
	bool existed[16];
	int n;
};

static void parents_snapshot(struct parents *p)
{
	DIR *d = opendir("/sys/fs/cgroup");
	struct dirent *de;

	p->n = 0;
	sbx_strlcpy(p->v[p->n], "/sys/fs/cgroup/sbx", sizeof(p->v[0]));
	p->existed[p->n] = access(p->v[p->n], F_OK) == 0;
	p->n++;
	while (d && (de = readdir(d)) && p->n < 16) {
		if (de->d_name[0] == '.' || de->d_type != DT_DIR)
			continue;
		pf(p->v[p->n], sizeof(p->v[0]), "/sys/fs/cgroup/%s/sbx", de->d_name);
		p->existed[p->n] = access(p->v[p->n], F_OK) == 0;
		p->n++;
	}
	if (d)
		closedir(d);
}

static bool name_left_anywhere(const struct parents *p, const char *name)
{
	char path[PATH_MAX * 2];

	for (int i = 0; i < p->n; i++) {
		pf(path, sizeof(path), "%s/%s", p->v[i], name);
		if (access(path, F_OK) == 0) {
			diag("left behind: %s", path);
			return true;
		}
	}
	return false;
}

static void reap_all(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* The first line of a cgroup file of our sandbox, v1 (per controller) or v2. */
static const char *real_file(enum sbx_cgroup_version v, const char *ctl, const char *name, const char *file)
{
	if (v == SBX_CGROUP_V2)
		return getf("/sys/fs/cgroup/sbx/%s/%s", name, file);
	return getf("/sys/fs/cgroup/%s/sbx/%s/%s", ctl, name, file);
}

static pid_t spawn_waiting(int go_fd, int res_fd, int mode)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	char c;
	if (read(go_fd, &c, 1) != 1)
		_exit(1);
	if (mode == 0) {
		/* Fork until refused: the pids limit counts this process too. */
		int n = 0;
		for (int i = 0; i < 64; i++) {
			pid_t g = fork();
			if (g == 0) {
				for (;;)
					pause();
			}
			if (g < 0)
				break;
			n++;
		}
		if (write(res_fd, &n, sizeof(n)) != sizeof(n))
			_exit(1);
		for (;;)
			pause();
	} else if (mode == 1) {
		/* Spin for 400 ms of wall time: with 0.5 CPUs it must be throttled. */
		uint64_t end = sbx_monotonic_ms() + 400;
		volatile uint64_t x = 0;
		while (sbx_monotonic_ms() < end)
			x++;
		_exit(0);
	} else {
		/* Touch twice the memory limit: the OOM killer must end it (no swap to escape to). */
		size_t sz = 128 * MIB;
		char *p = malloc(sz);
		if (!p)
			_exit(2);
		for (size_t i = 0; i < sz; i += 4096)
			p[i] = 1;
		_exit(3);
	}
}

static void test_real(void)
{
	struct sbx_cgroup_mgr *m = NULL;
	sbx_err err = SBX_ERR_INIT;
	struct parents before;
	struct sbx_cgroup_stats st;
	struct names ns = {0};
	enum sbx_cgroup_version v;
	char name[64], want[128];
	int go[2], res[2], n = -1, status;
	pid_t child;
	const char *s;

	diag("real cgroups");
	if (geteuid() != 0) {
		skip("not root");
		return;
	}
	if (sbx_cgroup_mgr_new(&m, &err) < 0) {
		ok(0, "real: manager: %s", err.msg);
		return;
	}
	v = sbx_cgroup_version(m);
	diag("real: %s", sbx_cgroup_describe(m));
	if (v == SBX_CGROUP_NONE) {
		skip(sbx_cgroup_describe(m));
		sbx_cgroup_mgr_free(m);
		return;
	}
	pf(name, sizeof(name), "sbxtest-%d", (int)getpid());
	parents_snapshot(&before);
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	is_int(sbx_cgroup_create(m, name, &lim_all, E), 0, "real: create %s (%s)", name, err.msg);
	if (v == SBX_CGROUP_V2) {
		is_str(real_file(v, NULL, name, "memory.max"), "67108864", "real: memory.max");
		s = real_file(v, NULL, name, "memory.swap.max");
		ok(!s || strcmp(s, "0") == 0, "real: memory.swap.max is 0 (or no swap support)");
		is_str(real_file(v, NULL, name, "cpu.max"), "50000 100000", "real: cpu.max");
		is_str(real_file(v, NULL, name, "pids.max"), "16", "real: pids.max");
	} else {
		is_str(real_file(v, "memory", name, "memory.limit_in_bytes"), "67108864", "real: memory.limit_in_bytes");
		s = real_file(v, "memory", name, "memory.memsw.limit_in_bytes");
		ok(!s || strcmp(s, "67108864") == 0, "real: memory.memsw.limit_in_bytes (%s)", s ? s : "no swap accounting");
		is_str(real_file(v, "cpu", name, "cpu.cfs_period_us"), "100000", "real: cpu.cfs_period_us");
		is_str(real_file(v, "cpu", name, "cpu.cfs_quota_us"), "50000", "real: cpu.cfs_quota_us");
		is_str(real_file(v, "pids", name, "pids.max"), "16", "real: pids.max");
	}

	/* The pids limit, seen from inside. */
	if (pipe(go) < 0 || pipe(res) < 0)
		abort();
	child = spawn_waiting(go[0], res[1], 0);
	is_int(sbx_cgroup_attach(m, name, child, E), 0, "real: attach child %d (%s)", (int)child, err.msg);
	pf(want, sizeof(want), v == SBX_CGROUP_V2 ? "0::/sbx/%s" : "pids:/sbx/%s", name);
	ok(contains(getf("/proc/%d/cgroup", (int)child), want), "real: /proc/%d/cgroup shows %s", (int)child, want);
	if (write(go[1], "g", 1) != 1 || read(res[0], &n, sizeof(n)) != sizeof(n))
		n = -1;
	ok(n >= 1 && n <= 15, "real: the child could fork only %d more (limit 16 with itself)", n);
	memset(&st, 0, sizeof(st));
	is_int(sbx_cgroup_stats(m, name, &st), 0, "real: stats");
	is_int(st.pids_current, n + 1, "real: pids.current counts the child and its children");
	ok(st.memory_current > 0, "real: memory is charged (%" PRIu64 " bytes)", st.memory_current);
	is_int(sbx_cgroup_kill(m, name, E), 0, "real: kill (%s)", err.msg);
	ok(killed_by_sigkill(child), "real: the child died of SIGKILL");
	reap_all();
	ok(sbx_cgroup_stats(m, name, &st) == 0 && st.pids_current == 0, "real: empty after kill");
	close(go[0]), close(go[1]), close(res[0]), close(res[1]);

	/* CPU bandwidth: a spinning child is throttled. */
	if (pipe(go) < 0)
		abort();
	child = spawn_waiting(go[0], -1, 1);
	is_int(sbx_cgroup_attach(m, name, child, E), 0, "real: attach spinner");
	if (write(go[1], "g", 1) != 1)
		abort();
	waitpid(child, &status, 0);
	s = real_file(v, "cpu", name, "cpu.stat");
	{
		uint64_t thr = 0;
		const char *t = s ? strstr(s, "nr_throttled ") : NULL;
		if (t)
			thr = strtoull(t + strlen("nr_throttled "), NULL, 10);
		ok(thr > 0, "real: the spinner was throttled (nr_throttled %" PRIu64 ")", thr);
	}
	close(go[0]), close(go[1]);

	/* Memory, swap included: touching twice the limit ends in an OOM kill. */
	if (pipe(go) < 0)
		abort();
	child = spawn_waiting(go[0], -1, 2);
	is_int(sbx_cgroup_attach(m, name, child, E), 0, "real: attach memory hog");
	if (write(go[1], "g", 1) != 1)
		abort();
	ok(killed_by_sigkill(child), "real: the memory hog was OOM-killed");
	ok(sbx_cgroup_stats(m, name, &st) == 0 && st.oom_killed, "real: stats report the OOM kill");
	close(go[0]), close(go[1]);

	/* A sleeper left inside: destroy kills it and removes everything. */
	child = spawn_sleeper();
	is_int(sbx_cgroup_attach(m, name, child, E), 0, "real: attach a sleeper");
	is_int(sbx_cgroup_list(m, collect, &ns) >= 1 && names_have(&ns, name), 1, "real: list has %s", name);
	is_int(sbx_cgroup_destroy(m, name, E), 0, "real: destroy with a process inside (%s)", err.msg);
	ok(killed_by_sigkill(child), "real: destroy killed it");
	reap_all();
	ok(!name_left_anywhere(&before, name), "real: nothing left under /sys/fs/cgroup/*/sbx/");
	is_int(sbx_cgroup_destroy(m, name, E), 0, "real: destroy again is fine");

	/* Leave the host as we found it: parents we created go if nobody else uses them. */
	for (int i = 0; i < before.n; i++)
		if (!before.existed[i] && access(before.v[i], F_OK) == 0 && rmdir(before.v[i]) < 0)
			diag("kept %s: %s", before.v[i], strerror(errno));
	sbx_cgroup_mgr_free(m);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_names();
	test_v2_root();
	test_v2_delegated();
	test_v1_root();
	test_v1_comounted();
	test_v1_delegated();
	test_v1_not_delegated();
	test_missing();
	test_real();
	return done_testing();
}
