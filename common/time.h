/*
 * time.h: clocks and the duration/size syntax of the command line.
 * Durations: "500ms", "30s", "5m", "2h", "1d", or plain seconds ("10").
 */
#ifndef HEIDI_COMMON_TIME_H
#define HEIDI_COMMON_TIME_H

#include <stddef.h>
#include <stdint.h>

#define NSEC_PER_MSEC 1000000ULL
#define NSEC_PER_SEC 1000000000ULL

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t time_now_ns(void);
/* CLOCK_REALTIME in milliseconds since the epoch. */
int64_t time_real_ms(void);

/* Parse a duration into milliseconds.  0 or -EINVAL / -ERANGE. */
int duration_parse_ms(const char *s, uint64_t *msp);
/* Format milliseconds compactly ("1.5s", "2m03s", "3h04m"). */
void duration_format(uint64_t ms, char *buf, size_t len);
/* Parse a size ("512M", "1G", "4096"); binary multiples.  0 or -errno. */
int size_parse(const char *s, uint64_t *bytesp);
/* Format an RFC 3339 UTC timestamp (seconds resolution) from epoch ms. */
void time_format_rfc3339(int64_t ms, char *buf, size_t len);

#endif
