/*
 * test-time.c: clocks and the duration/size syntax (common/time.h).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "common/time.h"

static void
assert_duration(const char *s, uint64_t want)
{
	uint64_t ms = 12345;
	int r = duration_parse_ms(s, &ms);

	cr_assert_eq(r, 0, "duration_parse_ms(\"%s\"): %d", s, r);
	cr_assert_eq(ms, want, "duration_parse_ms(\"%s\") = %llu, want %llu", s,
	    (unsigned long long)ms, (unsigned long long)want);
}

static void
assert_duration_error(const char *s, int want)
{
	uint64_t ms = 12345;
	int r = duration_parse_ms(s, &ms);

	cr_assert_eq(r, want, "duration_parse_ms(\"%s\"): %d, want %d", s, r, want);
	cr_assert_eq(ms, 12345, "duration_parse_ms(\"%s\") wrote a value on error", s);
}

static void
assert_size(const char *s, uint64_t want)
{
	uint64_t b = 12345;
	int r = size_parse(s, &b);

	cr_assert_eq(r, 0, "size_parse(\"%s\"): %d", s, r);
	cr_assert_eq(b, want, "size_parse(\"%s\") = %llu, want %llu", s, (unsigned long long)b,
	    (unsigned long long)want);
}

static void
assert_size_error(const char *s, int want)
{
	uint64_t b = 12345;
	int r = size_parse(s, &b);

	cr_assert_eq(r, want, "size_parse(\"%s\"): %d, want %d", s, r, want);
	cr_assert_eq(b, 12345, "size_parse(\"%s\") wrote a value on error", s);
}

static void
assert_format(uint64_t ms, const char *want)
{
	char buf[64];

	duration_format(ms, buf, sizeof(buf));
	cr_assert_str_eq(buf, want, "duration_format(%llu)", (unsigned long long)ms);
}

Test(time, duration_parses_every_unit)
{
	assert_duration("500ms", 500);
	assert_duration("30s", 30000);
	assert_duration("5m", 300000);
	assert_duration("2h", 7200000);
	assert_duration("1d", 86400000);
	assert_duration("0", 0);
	assert_duration("0ms", 0);
}

Test(time, duration_without_unit_is_seconds)
{
	assert_duration("10", 10000);
	assert_duration("1", 1000);
}

Test(time, duration_accepts_fractions)
{
	assert_duration("1.5s", 1500);
	assert_duration("0.5", 500);
	assert_duration("1.25m", 75000);
	assert_duration(".5s", 500);
	assert_duration("2.", 2000);
	assert_duration("0.001s", 1);
	assert_duration("1.5h", 5400000);
}

Test(time, duration_rejects_malformed_input)
{
	assert_duration_error("", -EINVAL);
	assert_duration_error("s", -EINVAL);
	assert_duration_error("ms", -EINVAL);
	assert_duration_error(".", -EINVAL);
	assert_duration_error("abc", -EINVAL);
	assert_duration_error("10x", -EINVAL);
	assert_duration_error("10 s", -EINVAL);
	assert_duration_error(" 10s", -EINVAL);
	assert_duration_error("-1s", -EINVAL);
	assert_duration_error("+1s", -EINVAL);
	assert_duration_error("1s2", -EINVAL);
	assert_duration_error("1sec", -EINVAL);
	assert_duration_error("1S", -EINVAL);
	assert_duration_error("1.2.3s", -EINVAL);
}

Test(time, duration_rejects_overflow_with_erange)
{
	assert_duration_error("99999999999999999999999", -ERANGE);
	assert_duration_error("99999999999999999999999ms", -ERANGE);
	assert_duration_error("999999999999999d", -ERANGE);
	/* big but representable */
	assert_duration("1000000000s", 1000000000000ULL);
}

Test(time, size_parses_binary_multiples)
{
	assert_size("4096", 4096);
	assert_size("0", 0);
	assert_size("1K", 1024);
	assert_size("1k", 1024);
	assert_size("512M", 512ULL << 20);
	assert_size("1G", 1ULL << 30);
	assert_size("2T", 2ULL << 40);
	assert_size("3P", 3ULL << 50);
}

Test(time, size_accepts_b_and_ib_suffixes)
{
	assert_size("512MB", 512ULL << 20);
	assert_size("512MiB", 512ULL << 20);
	assert_size("1gib", 1ULL << 30);
	assert_size("1Kb", 1024);
}

Test(time, size_accepts_fractions)
{
	assert_size("1.5K", 1536);
	assert_size("0.5G", 512ULL << 20);
}

Test(time, size_accepts_exbibytes)
{
	/* "E" is in the unit list; 2^60 and 15 * 2^60 fit in 64 bits */
	assert_size("1E", 1ULL << 60);
	assert_size("15E", 15ULL << 60);
	assert_size("1024P", 1ULL << 60);
}

Test(time, size_rejects_malformed_input)
{
	assert_size_error("", -EINVAL);
	assert_size_error("M", -EINVAL);
	assert_size_error("1X", -EINVAL);
	assert_size_error("1MX", -EINVAL);
	assert_size_error("1MiBs", -EINVAL);
	assert_size_error("-1M", -EINVAL);
	assert_size_error("1 M", -EINVAL);
	assert_size_error("1B", -EINVAL);
}

Test(time, size_rejects_overflow_with_erange)
{
	assert_size_error("16E", -ERANGE);
	assert_size_error("99999999999999999999999", -ERANGE);
}

Test(time, duration_format_is_compact)
{
	assert_format(0, "0ms");
	assert_format(999, "999ms");
	assert_format(1000, "1.0s");
	assert_format(1500, "1.5s");
	assert_format(59999, "59.9s");
	assert_format(60000, "1m00s");
	assert_format(123000, "2m03s");
	assert_format(3599999, "59m59s");
	assert_format(3600000, "1h00m");
	assert_format(11040000, "3h04m");
	assert_format(86400000, "1d00h");
	assert_format(90000000, "1d01h");
}

Test(time, duration_format_truncates_to_the_buffer)
{
	char buf[4];

	duration_format(123000, buf, sizeof(buf));
	cr_assert_eq(strlen(buf), 3);
	cr_assert_str_eq(buf, "2m0");
}

Test(time, rfc3339_formats_utc)
{
	char buf[64];

	time_format_rfc3339(0, buf, sizeof(buf));
	cr_assert_str_eq(buf, "1970-01-01T00:00:00Z");
	time_format_rfc3339(1700000000123, buf, sizeof(buf));
	cr_assert_str_eq(buf, "2023-11-14T22:13:20Z");
	time_format_rfc3339(951782400999, buf, sizeof(buf));
	cr_assert_str_eq(buf, "2000-02-29T00:00:00Z");
}

Test(time, clocks_are_sane)
{
	uint64_t a = time_now_ns(), b = time_now_ns();
	int64_t real = time_real_ms();

	cr_assert_leq(a, b, "CLOCK_MONOTONIC went backwards");
	cr_assert_gt(a, 0);
	/* after 2020-01-01 and before 2200-01-01 */
	cr_assert_gt(real, 1577836800000LL);
	cr_assert_lt(real, 7258118400000LL);
}
