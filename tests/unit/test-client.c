/*
 * test-client.c: socket path resolution of the client library
 * (proto/client.h).  Each Criterion test runs in its own process, so
 * changing the environment here does not leak into other tests.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "proto/client.h"

static void
clean_env(void)
{
	unsetenv("HEIDI_SOCKET");
	unsetenv("XDG_RUNTIME_DIR");
}

TestSuite(client, .init = clean_env);

Test(client, explicit_path_wins_over_everything)
{
	char buf[256];

	setenv("HEIDI_SOCKET", "/env/sock", 1);
	setenv("XDG_RUNTIME_DIR", "/run/user/1", 1);
	cr_assert_eq(client_socket_path("/explicit/sock", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/explicit/sock");
}

Test(client, heidi_socket_wins_over_xdg_runtime_dir)
{
	char buf[256];

	setenv("HEIDI_SOCKET", "/env/sock", 1);
	setenv("XDG_RUNTIME_DIR", "/run/user/1", 1);
	cr_assert_eq(client_socket_path(NULL, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/env/sock");
}

Test(client, xdg_runtime_dir_is_used_without_heidi_socket)
{
	char buf[256];

	setenv("XDG_RUNTIME_DIR", "/run/user/1", 1);
	cr_assert_eq(client_socket_path(NULL, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/run/user/1/heidi/heidid.sock");
}

Test(client, falls_back_to_tmp_per_uid)
{
	char buf[256], want[256];

	snprintf(want, sizeof(want), "/tmp/heidi-%u/heidid.sock", (unsigned)getuid());
	cr_assert_eq(client_socket_path(NULL, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, want);
}

Test(client, empty_values_count_as_unset)
{
	char buf[256];

	setenv("HEIDI_SOCKET", "", 1);
	setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
	cr_assert_eq(client_socket_path("", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/run/user/7/heidi/heidid.sock");
}

Test(client, too_long_path_is_enametoolong)
{
	char buf[16];

	cr_assert_eq(client_socket_path("/a/very/long/path/to/a/socket", buf, sizeof(buf)),
	    -ENAMETOOLONG);
	setenv("HEIDI_SOCKET", "/0123456789abcdef", 1);
	cr_assert_eq(client_socket_path(NULL, buf, sizeof(buf)), -ENAMETOOLONG);
	unsetenv("HEIDI_SOCKET");
	setenv("XDG_RUNTIME_DIR", "/run", 1);
	cr_assert_eq(client_socket_path(NULL, buf, sizeof(buf)), -ENAMETOOLONG);
	unsetenv("XDG_RUNTIME_DIR");
	cr_assert_eq(client_socket_path(NULL, buf, sizeof(buf)), -ENAMETOOLONG);
}

Test(client, path_that_exactly_fits_is_accepted)
{
	char buf[6];

	/* five characters and the terminator */
	cr_assert_eq(client_socket_path("/abcd", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/abcd");
	cr_assert_eq(client_socket_path("/abcde", buf, sizeof(buf)), -ENAMETOOLONG);
}
