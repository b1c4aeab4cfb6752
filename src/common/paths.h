/* paths.h - where sbx keeps things.
 *
 * XDG locations by default:  config  $XDG_CONFIG_HOME/sbx   (~/.config/sbx)
 *                            state   $XDG_STATE_HOME/sbx    (~/.local/state/sbx)
 *                            runtime $XDG_RUNTIME_DIR/sbx   (/run/sbx for root, else /tmp/sbx-UID)
 * SBX_HOME=DIR puts all three under DIR (config/, state/, run/) so tests can run fully isolated
 * instances side by side. Every directory is created 0700 and must be owned by the caller. */
#ifndef SBX_PATHS_H
#define SBX_PATHS_H

#include <limits.h>

#include "err.h"

struct sbx_paths {
	char config_dir[PATH_MAX];
	char state_dir[PATH_MAX];
	char runtime_dir[PATH_MAX];
	char socket_path[108]; /* runtime_dir/sbxd.sock, must fit sockaddr_un */
	char lock_path[PATH_MAX];
	char db_path[PATH_MAX];
	char daemon_log_path[PATH_MAX];
	char sandboxes_dir[PATH_MAX]; /* state_dir/sandboxes: per-sandbox persistent data */
	char cache_dir[PATH_MAX];     /* state_dir/cache: things prepared ahead of time */
};

int sbx_paths_resolve(struct sbx_paths *p, sbx_err *err);
/* Create the directories (0700) and refuse ones owned by someone else or open to others. */
int sbx_paths_ensure(const struct sbx_paths *p, sbx_err *err);

#endif
