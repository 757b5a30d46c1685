/*
 * util.h: small macros shared by every heidi program.
 *
 * Cleanup attributes: every owning local is declared with one of the
 * _cleanup_ helpers so that early returns cannot leak; on success the
 * owner "steals" the value by resetting the local (see STEAL()).
 */
#ifndef HEIDI_COMMON_UTIL_H
#define HEIDI_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
/* libbsd's RB_GENERATE_STATIC expects the BSD spelling */
#ifndef __unused
#define __unused __attribute__((unused))
#endif
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Take ownership of *p, leaving the invalid value behind. */
#define STEAL(p, invalid) ({ __typeof__(*(p)) _v = *(p); *(p) = (invalid); _v; })
#define STEAL_PTR(p) STEAL(p, NULL)
#define STEAL_FD(p) STEAL(p, -1)

static inline void
freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

#endif
