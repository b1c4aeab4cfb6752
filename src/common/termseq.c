#include "termseq.h"

#include <stdint.h>

#define BEL 0x07
#define CAN 0x18
#define SUB 0x1a
#define ESC 0x1b

void sbx_termseq_init(struct sbx_termseq *t)
{
	t->state = SBX_TS_GROUND;
	t->utf8_left = 0;
}

bool sbx_termseq_ground(const struct sbx_termseq *t)
{
	return t->state == SBX_TS_GROUND;
}

/* Continuation bytes a UTF-8 lead byte announces; 0 for a byte that starts no character
 * (ASCII, a stray continuation byte, an invalid lead: a terminal shows those as they are or as
 * a replacement character, and stays in ground). */
static unsigned utf8_follow(uint8_t c)
{
	if (c >= 0xc2 && c <= 0xdf)
		return 1;
	if (c >= 0xe0 && c <= 0xef)
		return 2;
	if (c >= 0xf0 && c <= 0xf4)
		return 3;
	return 0;
}

static void ground(struct sbx_termseq *t, uint8_t c)
{
	t->utf8_left = c == ESC ? 0 : utf8_follow(c);
	t->state = c == ESC ? SBX_TS_ESC : t->utf8_left ? SBX_TS_UTF8 : SBX_TS_GROUND;
}

/* The byte after ESC. */
static void after_esc(struct sbx_termseq *t, uint8_t c)
{
	if (c == CAN || c == SUB)
		t->state = SBX_TS_GROUND;
	else if (c == ESC)
		t->state = SBX_TS_ESC;
	else if (c < 0x20 || c >= 0x7f)
		; /* a C0 control runs without ending the sequence; DEL and high bytes are ignored */
	else if (c == '[')
		t->state = SBX_TS_CSI;
	else if (c == ']')
		t->state = SBX_TS_OSC;
	else if (c == 'P' || c == 'X' || c == '^' || c == '_')
		t->state = SBX_TS_STR;
	else if (c <= 0x2f)
		t->state = SBX_TS_ESC_INTER;
	else
		t->state = SBX_TS_GROUND; /* 0x30-0x7e: the final byte of a two-byte sequence */
}

static void step(struct sbx_termseq *t, uint8_t c)
{
	switch (t->state) {
	case SBX_TS_GROUND:
		ground(t, c);
		return;
	case SBX_TS_UTF8:
		if (c >= 0x80 && c <= 0xbf) {
			if (--t->utf8_left == 0)
				t->state = SBX_TS_GROUND;
		} else {
			ground(t, c); /* a cut character: the terminal shows U+FFFD and takes this byte afresh */
		}
		return;
	case SBX_TS_ESC:
		after_esc(t, c);
		return;
	case SBX_TS_ESC_INTER:
	case SBX_TS_CSI:
		if (c == CAN || c == SUB)
			t->state = SBX_TS_GROUND;
		else if (c == ESC)
			t->state = SBX_TS_ESC;
		else if (c < 0x20 || c >= 0x7f)
			; /* controls run inside; DEL and high bytes are ignored */
		else if (t->state == SBX_TS_ESC_INTER ? c >= 0x30 : c >= 0x40)
			t->state = SBX_TS_GROUND; /* the final byte */
		/* else: a parameter or intermediate byte; the sequence goes on */
		return;
	case SBX_TS_OSC:
	case SBX_TS_STR:
		if (c == CAN || c == SUB || (c == BEL && t->state == SBX_TS_OSC))
			t->state = SBX_TS_GROUND;
		else if (c == ESC)
			t->state = SBX_TS_STR_ESC;
		return;
	case SBX_TS_STR_ESC:
		/* ESC \ is ST; ESC and anything else ends the string and starts a new sequence. */
		if (c == '\\')
			t->state = SBX_TS_GROUND;
		else
			after_esc(t, c);
		return;
	case SBX_TS_COUNT_:
		break;
	}
	t->state = SBX_TS_GROUND; /* not reached: the states above are all there are */
}

void sbx_termseq_feed(struct sbx_termseq *t, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		step(t, p[i]);
}
