
#include "paths.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static int join(char *out, size_t outlen, const char *a, const char *b, sbx_err *err)
{
	if ((size_t)snprintf(out, outlen, "%s/%s", a, b) >= outlen)
		return sbx_err_set(err, SBX_E_INVALID, "path too long: %s/%s", a, b);
	return 0;
}

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h && h[0] == '/')
		return h;
	pw = getpwuid(getuid());
	return pw && pw->pw_dir ? pw->pw_dir : NULL;
}

static int xdg_dir(char *out, size_t outlen, const char *env, const char *fallback_rel, sbx_err *err)
{
	const char *v = getenv(env);
	const char *home;
	char base[PATH_MAX];

	if (v && v[0] == '/')
		return join(out, outlen, v, "sbx", err);
	home = home_dir();
	if (!home)
		return sbx_err_set(err, SBX_E_INVALID, "cannot find a home directory: set HOME or %s", env);
	if (join(base, sizeof(base), home, fallback_rel, err) < 0)
		return -1;
	return join(out, outlen, base, "sbx", err);
}

int sbx_paths_resolve(struct sbx_paths *p, sbx_err *err)
{
	const char *home = getenv("SBX_HOME");

	memset(p, 0, sizeof(*p));
	if (home && *home) {
		if (home[0] != '/')
			return sbx_err_set(err, SBX_E_INVALID, "SBX_HOME must be an absolute path, not '%s'", home);
		if (join(p->config_dir, sizeof(p->config_dir), home, "config", err) < 0 ||
		    join(p->state_dir, sizeof(p->state_dir), home, "state", err) < 0 ||
		    join(p->runtime_dir, sizeof(p->runtime_dir), home, "run", err) < 0)
			return -1;
	} else {
		const char *rt = getenv("XDG_RUNTIME_DIR");
		if (xdg_dir(p->config_dir, sizeof(p->config_dir), "XDG_CONFIG_HOME", ".config", err) < 0 ||
		    xdg_dir(p->state_dir, sizeof(p->state_dir), "XDG_STATE_HOME", ".local/state", err) < 0)
			return -1;
		if (rt && rt[0] == '/') {
			if (join(p->runtime_dir, sizeof(p->runtime_dir), rt, "sbx", err) < 0)
				return -1;
		} else if (getuid() == 0) {
			sbx_strlcpy(p->runtime_dir, "/run/sbx", sizeof(p->runtime_dir));
		} else {
			snprintf(p->runtime_dir, sizeof(p->runtime_dir), "/tmp/sbx-%u", (unsigned)getuid());
		}
	}
	if ((size_t)snprintf(p->socket_path, sizeof(p->socket_path), "%s/sbxd.sock", p->runtime_dir) >=
	    sizeof(p->socket_path))
		return sbx_err_set(err, SBX_E_INVALID,
				   "runtime directory %s is too long for a unix socket path (limit 107 bytes): "
				   "use a shorter SBX_HOME or XDG_RUNTIME_DIR", p->runtime_dir);
	if (join(p->lock_path, sizeof(p->lock_path), p->runtime_dir, "sbxd.lock", err) < 0 ||
	    join(p->db_path, sizeof(p->db_path), p->state_dir, "sbx.db", err) < 0 ||
	    join(p->daemon_log_path, sizeof(p->daemon_log_path), p->state_dir, "sbxd.log", err) < 0 ||
	    join(p->sandboxes_dir, sizeof(p->sandboxes_dir), p->state_dir, "sandboxes", err) < 0 ||
	    join(p->cache_dir, sizeof(p->cache_dir), p->state_dir, "cache", err) < 0)
		return -1;
	return 0;
}

static int ensure_private_dir(const char *path, sbx_err *err)
{
	struct stat st;

	if (sbx_mkdir_p(path, 0700) < 0)
		return sbx_err_sys(err, SBX_E_IO, errno, "cannot create %s", path);
	if (lstat(path, &st) < 0)
		return sbx_err_sys(err, SBX_E_IO, errno, "cannot inspect %s", path);
	if (!S_ISDIR(st.st_mode))
		return sbx_err_set(err, SBX_E_INVALID, "%s is not a directory", path);
	if (st.st_uid != geteuid())
		return sbx_err_set(err, SBX_E_PERM, "%s belongs to uid %u, not to you (uid %u): remove it or set SBX_HOME",
				   path, (unsigned)st.st_uid, (unsigned)geteuid());
	if ((st.st_mode & 0077) && chmod(path, 0700) < 0)
		return sbx_err_sys(err, SBX_E_PERM, errno, "%s is open to other users and cannot be fixed", path);
	return 0;
}

int sbx_paths_ensure(const struct sbx_paths *p, sbx_err *err)
{
	const char *dirs[] = {p->config_dir, p->state_dir, p->runtime_dir, p->sandboxes_dir, p->cache_dir};

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (ensure_private_dir(dirs[i], err) < 0)
			return -1;
	return 0;
}
