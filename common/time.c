/*
 * time.c: monotonic/real clocks and parsing of durations and sizes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/time.h"

uint64_t
time_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

int64_t
time_real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parse a decimal number with an optional fraction into value * 1000. */
static int
parse_milli(const char **sp, uint64_t *vp)
{
	const char *s = *sp;
	uint64_t v = 0, frac = 0, scale = 1000;
	int digits = 0;

	while (isdigit((unsigned char)*s)) {
		if (v > (UINT64_MAX / 10 - 9) / 1000)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s++ - '0');
		digits++;
	}
	if (*s == '.') {
		s++;
		while (isdigit((unsigned char)*s)) {
			if (scale > 1) {
				scale /= 10;
				frac += (uint64_t)(*s - '0') * scale;
			}
			s++;
			digits++;
		}
	}
	if (digits == 0)
		return -EINVAL;
	*vp = v * 1000 + frac;
	*sp = s;
	return 0;
}

int
duration_parse_ms(const char *s, uint64_t *msp)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	uint64_t milli;
	int r;

	if (s == NULL || *s == '\0')
		return -EINVAL;
	r = parse_milli(&s, &milli);
	if (r < 0)
		return r;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s, units[i].suffix) != 0)
			continue;
		if (milli > UINT64_MAX / units[i].ms)
			return -ERANGE;
		*msp = milli * units[i].ms / 1000;
		return 0;
	}
	return -EINVAL;
}

void
duration_format(uint64_t ms, char *buf, size_t len)
{
	uint64_t s = ms / 1000;

	if (ms < 1000)
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	else if (s < 60)
		snprintf(buf, len, "%llu.%llus", (unsigned long long)s,
		    (unsigned long long)(ms % 1000 / 100));
	else if (s < 3600)
		snprintf(buf, len, "%llum%02llus", (unsigned long long)(s / 60),
		    (unsigned long long)(s % 60));
	else if (s < 86400)
		snprintf(buf, len, "%lluh%02llum", (unsigned long long)(s / 3600),
		    (unsigned long long)(s / 60 % 60));
	else
		snprintf(buf, len, "%llud%02lluh", (unsigned long long)(s / 86400),
		    (unsigned long long)(s / 3600 % 24));
}

int
size_parse(const char *s, uint64_t *bytesp)
{
	static const char units[] = "KMGTPE";
	uint64_t milli, mult = 1;
	const char *u;
	int r;

	if (s == NULL || *s == '\0')
		return -EINVAL;
	r = parse_milli(&s, &milli);
	if (r < 0)
		return r;
	if (*s != '\0') {
		u = strchr(units, toupper((unsigned char)*s));
		if (u == NULL || *u == '\0')
			return -EINVAL;
		for (const char *p = units; p <= u; p++)
			mult *= 1024;
		s++;
		/* accept "512M", "512MB", "512MiB" */
		if (*s == 'i' || *s == 'I')
			s++;
		if (*s == 'b' || *s == 'B')
			s++;
		if (*s != '\0')
			return -EINVAL;
	}
	{
		unsigned __int128 v = (unsigned __int128)milli * mult / 1000;

		if (v > UINT64_MAX)
			return -ERANGE;
		*bytesp = (uint64_t)v;
	}
	return 0;
}

void
time_format_rfc3339(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
