/* agents.h - agent profiles: what `sbx run AGENT` starts and what it needs. */
#ifndef SBX_AGENTS_H
#define SBX_AGENTS_H

#include <stddef.h>

struct sbx_agent_profile {
	const char *name;
	const char *description;
	const char *command;              /* looked up in the sandbox's PATH */
	const char *const *default_args;  /* NULL-terminated */
	const char *install;              /* how to install it inside a sandbox, or NULL */
	const char *const *hosts;         /* network hosts it needs (for the egress policy) */
	int args_are_command;             /* `sbx run shell -- make test` runs `make test` */
};

const struct sbx_agent_profile *sbx_agent_find(const char *name);
/* All profiles, in display order; *n gets the count. */
const struct sbx_agent_profile *sbx_agent_all(size_t *n);
/* "shell, claude, codex, ..." for error messages. */
const char *sbx_agent_names(void);

#endif
