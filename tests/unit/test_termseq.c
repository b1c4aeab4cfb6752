/* test_termseq.c - the terminal stream tracker (src/common/termseq.c): which byte streams leave
 * a sequence open, for each kind of sequence a TUI writes, every input fed whole, byte by byte
 * and at every two-way split (the answer must not depend on chunking), and the two ways out of
 * any state that sbx's notifications rely on (CAN, and ESC \). */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "termseq.h"

struct tcase {
	const char *name;
	const char *bytes;
	enum sbx_termseq_state want;
};

static const struct tcase cases[] = {
	{"plain text", "hello, world\r\n", SBX_TS_GROUND},
	{"empty", "", SBX_TS_GROUND},
	{"C0 controls", "a\tb\bc\r\n\a", SBX_TS_GROUND},
	{"lone ESC", "text\033", SBX_TS_ESC},
	{"CSI open", "\033[", SBX_TS_CSI},
	{"CSI with parameters, no final", "\033[38;5;2", SBX_TS_CSI},
	{"CSI private parameters", "\033[?1049", SBX_TS_CSI},
	{"SGR complete", "\033[1;31mred\033[0m", SBX_TS_GROUND},
	{"cursor move complete", "\033[12;40H", SBX_TS_GROUND},
	{"private mode complete", "\033[?1049h\033[?25l", SBX_TS_GROUND},
	{"CSI intermediate then final", "\033[0 q", SBX_TS_GROUND},
	{"CR inside CSI keeps it open", "\033[1\r", SBX_TS_CSI},
	{"CR inside CSI then final", "\033[1\r;2H", SBX_TS_GROUND},
	{"ESC restarts inside CSI", "\033[12\033[", SBX_TS_CSI},
	{"CAN aborts CSI", "\033[12\030", SBX_TS_GROUND},
	{"SUB aborts CSI", "\033[12\032", SBX_TS_GROUND},
	{"charset designation open", "\033(", SBX_TS_ESC_INTER},
	{"charset designation complete", "\033(B", SBX_TS_GROUND},
	{"two intermediates", "\033 #", SBX_TS_ESC_INTER},
	{"DECSC complete", "\0337", SBX_TS_GROUND},
	{"keypad mode complete", "\033=", SBX_TS_GROUND},
	{"OSC open", "\033]0;my title", SBX_TS_OSC},
	{"OSC ended by BEL", "\033]0;my title\a", SBX_TS_GROUND},
	{"OSC ended by ST", "\033]2;title\033\\", SBX_TS_GROUND},
	{"OSC ESC pending", "\033]2;title\033", SBX_TS_STR_ESC},
	{"OSC hyperlink complete", "\033]8;;https://example.com\033\\link\033]8;;\033\\", SBX_TS_GROUND},
	{"OSC with UTF-8 text", "\033]2;caf\xc3\xa9", SBX_TS_OSC},
	{"OSC with UTF-8 then BEL", "\033]2;caf\xc3\xa9\a", SBX_TS_GROUND},
	{"CAN aborts OSC", "\033]2;x\030", SBX_TS_GROUND},
	{"ESC other than ST ends a string and starts a sequence", "\033]2;x\033[", SBX_TS_CSI},
	{"ESC ESC inside a string", "\033]2;x\033\033", SBX_TS_ESC},
	{"DCS open", "\033Pq#0;2;0;0;0", SBX_TS_STR},
	{"DCS not ended by BEL", "\033P1$r\a", SBX_TS_STR},
	{"DCS ended by ST", "\033P1$r0m\033\\", SBX_TS_GROUND},
	{"APC open", "\033_Gf=100;AAAA", SBX_TS_STR},
	{"APC ended by ST", "\033_Gf=100;AAAA\033\\", SBX_TS_GROUND},
	{"SOS and PM open", "\033Xsos\033^pm", SBX_TS_STR},
	{"UTF-8 two bytes complete", "caf\xc3\xa9", SBX_TS_GROUND},
	{"UTF-8 two bytes open", "caf\xc3", SBX_TS_UTF8},
	{"UTF-8 three bytes open after one", "\xe2", SBX_TS_UTF8},
	{"UTF-8 three bytes open after two", "\xe2\x94", SBX_TS_UTF8},
	{"UTF-8 box drawing complete", "\xe2\x94\x80\xe2\x94\x82", SBX_TS_GROUND},
	{"UTF-8 four bytes complete", "\xf0\x9f\x98\x80", SBX_TS_GROUND},
	{"UTF-8 four bytes open", "\xf0\x9f\x98", SBX_TS_UTF8},
	{"cut UTF-8 then ASCII", "\xe2\x94x", SBX_TS_GROUND},
	{"cut UTF-8 then ESC", "\xe2\033[", SBX_TS_CSI},
	{"stray continuation byte", "\x80\xbf", SBX_TS_GROUND},
	{"invalid lead bytes", "\xc0\xc1\xf5\xff", SBX_TS_GROUND},
	{"C1 CSI byte is not a CSI", "\x9b", SBX_TS_GROUND},
	{"DEL inside CSI ignored", "\033[1\x7f", SBX_TS_CSI},
	{"high byte inside CSI ignored", "\033[1\xc3", SBX_TS_CSI},
	{"full screen redraw",
	 "\033[?1049h\033[H\033[2J\033[1;1H\xe2\x94\x8c\xe2\x94\x80 claude \xe2\x94\x80\xe2\x94\x90\033[0m\033]0;claude\a",
	 SBX_TS_GROUND},
};

static enum sbx_termseq_state feed_all(const char *s, size_t n)
{
	struct sbx_termseq t;

	sbx_termseq_init(&t);
	sbx_termseq_feed(&t, s, n);
	return t.state;
}

static void check_case(const struct tcase *c)
{
	size_t n = strlen(c->bytes);
	struct sbx_termseq t;
	bool bytewise_same = true, splits_same = true;

	is_int(feed_all(c->bytes, n), c->want, "%s", c->name);
	ok(sbx_termseq_ground(&(struct sbx_termseq){.state = feed_all(c->bytes, n)}) == (c->want == SBX_TS_GROUND),
	   "%s: ground() agrees", c->name);

	/* Byte by byte, each byte in its own heap copy so that ASan sees any read past it. */
	sbx_termseq_init(&t);
	for (size_t i = 0; i < n; i++) {
		char *one = malloc(1);
		if (!one)
			abort();
		*one = c->bytes[i];
		sbx_termseq_feed(&t, one, 1);
		free(one);
	}
	bytewise_same = t.state == c->want;
	/* Every split into two chunks. */
	for (size_t cut = 0; cut <= n; cut++) {
		sbx_termseq_init(&t);
		sbx_termseq_feed(&t, c->bytes, cut);
		sbx_termseq_feed(&t, c->bytes + cut, n - cut);
		if (t.state != c->want)
			splits_same = false;
	}
	ok(bytewise_same && splits_same, "%s: the same byte by byte and at every split", c->name);

	/* The ways back to ground from wherever the case left the stream. */
	sbx_termseq_init(&t);
	sbx_termseq_feed(&t, c->bytes, n);
	sbx_termseq_feed(&t, "\030", 1);
	ok(sbx_termseq_ground(&t), "%s: CAN returns to ground", c->name);
	sbx_termseq_init(&t);
	sbx_termseq_feed(&t, c->bytes, n);
	sbx_termseq_feed(&t, "\033\\", 2);
	ok(sbx_termseq_ground(&t), "%s: ESC \\ returns to ground", c->name);
}

/* sbx's own title and bell, written in ground, leave the stream in ground. */
static void check_own_writes(void)
{
	static const char title[] = "\033[22;0t\033]2;sbx: 1 request(s) held for review - sbx review ls\007\007";
	static const char pop[] = "\033[23;0t";
	struct sbx_termseq t;

	sbx_termseq_init(&t);
	sbx_termseq_feed(&t, title, sizeof(title) - 1);
	ok(sbx_termseq_ground(&t), "sbx's title, pushed, and a bell end in ground");
	sbx_termseq_feed(&t, pop, sizeof(pop) - 1);
	ok(sbx_termseq_ground(&t), "popping the title ends in ground");
}

/* Every byte value from every state: the state stays one of the known ones. */
static void check_every_byte(void)
{
	bool valid = true;

	for (int s = 0; s < SBX_TS_COUNT_; s++)
		for (int b = 0; b < 256; b++) {
			struct sbx_termseq t = {.state = (enum sbx_termseq_state)s, .utf8_left = s == SBX_TS_UTF8 ? 2 : 0};
			unsigned char c = (unsigned char)b;
			sbx_termseq_feed(&t, &c, 1);
			if ((unsigned)t.state >= SBX_TS_COUNT_ || (t.state == SBX_TS_UTF8) != (t.utf8_left > 0) ||
			    t.utf8_left > 3)
				valid = false;
		}
	ok(valid, "every byte from every state gives a known state");
}

int main(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
	check_own_writes();
	check_every_byte();
	return done_testing();
}
