/* termseq.h - where a terminal output stream stands: between sequences, or inside one.
 *
 * `sbx run` copies an agent's output from the sandbox's pty to the user's terminal, and wants to
 * add a few bytes of its own (a window title, a bell) without breaking the agent's screen. Bytes
 * written into the middle of an escape sequence (or of a UTF-8 character) would end up as part
 * of it: a half-drawn status line, a broken colour, a title that swallows our text. This tracker
 * follows the stream the way a VT500-style terminal parser does, only far enough to answer one
 * question: is a sequence open right now?
 *
 * States: ground; a UTF-8 character in progress; ESC; ESC with intermediates (ESC ( B); CSI
 * (ESC [ ... final); OSC (ESC ] ... BEL or ST); the other strings DCS, SOS, PM, APC (ESC P, X,
 * ^, _ ... ST); ESC inside a string (ST is ESC \). CAN and SUB abort any sequence, ESC aborts
 * one and starts the next, C0 controls inside CSI and ESC run without ending them, as in a
 * terminal. Only BEL ends an OSC string early (xterm's convention); a DCS is held open until
 * ST, which errs on the side of waiting. 8-bit C1 controls are not recognised: the terminals
 * sbx serves are UTF-8, where bytes 0x80-0x9f are parts of characters.
 *
 * Constant memory, no allocation, any byte sequence accepted; the result never depends on how
 * the stream was split into chunks. */
#ifndef SBX_TERMSEQ_H
#define SBX_TERMSEQ_H

#include <stdbool.h>
#include <stddef.h>

enum sbx_termseq_state {
	SBX_TS_GROUND = 0,
	SBX_TS_UTF8,      /* inside a multi-byte UTF-8 character */
	SBX_TS_ESC,       /* after ESC */
	SBX_TS_ESC_INTER, /* ESC and intermediate bytes (0x20-0x2f), waiting for the final byte */
	SBX_TS_CSI,       /* ESC [ and parameters, waiting for the final byte (0x40-0x7e) */
	SBX_TS_OSC,       /* ESC ] ..., ended by BEL or ST */
	SBX_TS_STR,       /* DCS, SOS, PM or APC, ended by ST */
	SBX_TS_STR_ESC,   /* ESC inside OSC or another string: ST if a '\' follows */
	SBX_TS_COUNT_
};

struct sbx_termseq {
	enum sbx_termseq_state state;
	unsigned utf8_left; /* continuation bytes still expected in SBX_TS_UTF8 */
};

void sbx_termseq_init(struct sbx_termseq *t);
void sbx_termseq_feed(struct sbx_termseq *t, const void *buf, size_t len);
/* True between sequences: bytes written now stand on their own. */
bool sbx_termseq_ground(const struct sbx_termseq *t);

#endif
