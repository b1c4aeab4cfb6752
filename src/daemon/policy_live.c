/* policy_live.c - the policy in force: compiled from the store, swapped on every change.
 *
 * The proxy decides every connection with d->policy, so a rule change reaches running
 * sandboxes the moment the new policy is swapped in. A compiled policy is immutable; a reload
 * builds a complete new one first and swaps only on success, so a failed reload leaves the old
 * policy in force and never opens anything up. The swap and the free happen on the daemon's
 * event loop, the thread that decides connections, so no decision can still hold the old one.
 *
 * Which preset the user chose is recorded by sbx_preset_apply (meta 'policy_preset'). None
 * recorded means the policy was never initialised: the CLI then asks on a terminal, and
 * everything else (a script, a sandbox start) gets the balanced preset. */
#include <stdlib.h>

#include "api_policy.h"
#include "log.h"
#include "policy.h"

int sbx_daemon_policy_reload(struct sbx_daemon *d, sbx_err *err)
{
	struct sbx_rule *rules = NULL;
	size_t n = 0;

	if (sbx_rules_load(d->store, &rules, &n, err) < 0)
		return sbx_err_wrap(err, "loading the network policy (the previous policy stays in force)");
	struct sbx_policy *p = sbx_policy_build(rules, n); /* keeps its own copy of the rules */
	free(rules);
	if (!p)
		return sbx_err_set(err, SBX_E_INTERNAL,
				   "out of memory compiling the network policy (the previous policy stays in force)");
	struct sbx_policy *old = d->policy;
	d->policy = p;
	sbx_policy_free(old);
	log_debug("network policy reloaded: %zu rules", n);
	return 0;
}

int sbx_daemon_policy_preset(struct sbx_daemon *d, char *out, size_t n, sbx_err *err)
{
	int r = sbx_policy_preset_get(d->store, out, n);

	if (r < 0)
		return sbx_err_set(err, SBX_E_IO, "state database: cannot read which network policy preset was chosen");
	return r;
}

int sbx_daemon_policy_init(struct sbx_daemon *d, const char *preset, sbx_err *err)
{
	size_t n;

	if (!sbx_preset_resources(preset, &n))
		return sbx_err_set(err, SBX_E_INVALID,
				   "unknown network policy preset '%s': use allow-all, balanced or deny-all", preset);
	if (sbx_preset_apply(d->store, preset, err) < 0)
		return sbx_err_wrap(err, "applying the %s network policy", preset);
	log_info("network policy: preset %s applied (%zu rules)", preset, n);
	return sbx_daemon_policy_reload(d, err);
}

int sbx_daemon_policy_ensure(struct sbx_daemon *d, sbx_err *err)
{
	char preset[64];
	int r = sbx_daemon_policy_preset(d, preset, sizeof(preset), err);

	if (r < 0)
		return -1;
	if (r == 0)
		return sbx_daemon_policy_init(d, "balanced", err);
	/* Chosen earlier (maybe under a previous daemon): make sure this daemon has it loaded. */
	return d->policy ? 0 : sbx_daemon_policy_reload(d, err);
}
