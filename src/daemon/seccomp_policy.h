/* seccomp_policy.h - the sandbox's system-call filter, generated on the host.
 *
 * The daemon builds the filter once with libseccomp and exports it as a classic BPF program;
 * sbx-init (static, no libseccomp) installs it in each sandboxed process as the very last step
 * before execve. Generating it outside the sandbox means the sandbox never parses policy. */
#ifndef SBX_SECCOMP_POLICY_H
#define SBX_SECCOMP_POLICY_H

#include <stddef.h>

#include "err.h"

struct sbx_bpf {
	void *insns;  /* struct sock_filter[] */
	size_t len;   /* number of instructions */
};

/* Builds the filter for the native architecture. Other architectures' system-call entry points
 * (i386 int 0x80, x32) kill the process. */
int sbx_seccomp_build(struct sbx_bpf *out, sbx_err *err);
void sbx_bpf_free(struct sbx_bpf *b);
/* Human-readable list of what the filter refuses, for docs and `sbx diagnose`. */
const char *sbx_seccomp_summary(void);

#endif
