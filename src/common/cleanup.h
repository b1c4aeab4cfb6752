/* cleanup.h - scope-bound ownership for function-local resources.
 *
 * Long-lived objects get explicit *_free() functions; anything that lives for one function
 * call is declared with one of these attributes so that every early return releases it.
 * Ownership leaves the scope only through take_ptr()/take_fd(), which make the hand-off
 * visible at the call site. */
#ifndef SBX_CLEANUP_H
#define SBX_CLEANUP_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void sbx_cleanup_free_(void *p) { free(*(void **)p); }
static inline void sbx_cleanup_close_(const int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
static inline void sbx_cleanup_fclose_(FILE **f)
{
	if (*f)
		fclose(*f);
}

#define cleanup_free __attribute__((cleanup(sbx_cleanup_free_)))
#define cleanup_close __attribute__((cleanup(sbx_cleanup_close_)))
#define cleanup_fclose __attribute__((cleanup(sbx_cleanup_fclose_)))

/* Hand ownership out of a cleanup-managed variable. */
#define take_ptr(p)                            \
	({                                     \
		__typeof__(p) take_tmp_ = (p); \
		(p) = NULL;                    \
		take_tmp_;                     \
	})
#define take_fd(fd)                      \
	({                               \
		int take_tmp_ = (fd);    \
		(fd) = -1;               \
		take_tmp_;               \
	})

/* Free a pointer and NULL it in one step, so it cannot be used or freed again. */
#define free_and_null(p)         \
	do {                     \
		free(p);         \
		(p) = NULL;      \
	} while (0)

#define close_and_reset(fd)              \
	do {                             \
		if ((fd) >= 0)           \
			close(fd);       \
		(fd) = -1;               \
	} while (0)

#define SBX_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
