/* attach.h - connecting the user's terminal or streams to a process in a sandbox.
 *
 * With a terminal: the local terminal goes raw and its bytes go straight to the sandbox's pty
 * master (so Ctrl-C, Ctrl-Z and friends are interpreted by the sandbox's line discipline, for
 * its foreground job); window size changes are forwarded. Without one: stdin, stdout and stderr
 * are relayed separately, and SIGINT/SIGTERM/SIGHUP/SIGQUIT are forwarded to the process group.
 * Returns the exit code to use (the process's, 128+signal when it was killed). */
#ifndef SBX_ATTACH_H
#define SBX_ATTACH_H

#include "client.h"

int sbx_attach(struct sbx_response *r, bool tty, bool want_stdin);

#endif
