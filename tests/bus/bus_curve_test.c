/* Key files and allow-lists of the optional CURVE security (bus_curve.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus_curve.h"
#include "ls_test.h"

static char dir[] = "/tmp/bus-curve-test-XXXXXX";

static char *
path(const char *name)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

static void
write_text(const char *name, const char *text)
{
	FILE *f = fopen(path(name), "w");

	fputs(text, f);
	fclose(f);
}

LS_TEST(keyfile_round_trip)
{
	char pub[BUS_CURVE_KEY_LEN + 1], pub2[BUS_CURVE_KEY_LEN + 1];
	char sec[BUS_CURVE_KEY_LEN + 1];
	ls_error err = { 0 };
	struct stat st;

	LS_CHECK_INT(bus_curve_write_keyfile(path("a.key"), pub, &err), 0);
	LS_CHECK(bus_curve_key_valid(pub));
	LS_CHECK_INT(stat(path("a.key"), &st), 0);
	LS_CHECK_INT(st.st_mode & 0777, 0600);
	LS_CHECK_INT(bus_curve_read_keyfile(path("a.key"), pub2, sec, &err),
	             0);
	LS_CHECK_STR(pub2, pub);
	LS_CHECK(bus_curve_key_valid(sec));
	/* Never overwritten. */
	LS_CHECK(bus_curve_write_keyfile(path("a.key"), pub2, &err) < 0);
	LS_CHECK(strstr(err.text, "a.key") != NULL);
}

LS_TEST(keyfile_errors_are_explained)
{
	char pub[BUS_CURVE_KEY_LEN + 1], sec[BUS_CURVE_KEY_LEN + 1];
	char other_pub[BUS_CURVE_KEY_LEN + 1],
	        other_sec[BUS_CURVE_KEY_LEN + 1];
	char text[256];
	ls_error err = { 0 };

	LS_CHECK_INT(bus_curve_keypair(pub, sec), 0);
	LS_CHECK_INT(bus_curve_keypair(other_pub, other_sec), 0);
	snprintf(text, sizeof(text),
	         "{\"public\": \"%s\", \"secret\": \"%s\"}", other_pub, sec);
	write_text("mismatch.key", text);
	LS_CHECK(bus_curve_read_keyfile(path("mismatch.key"), pub, sec, &err) <
	         0);
	LS_CHECK(strstr(err.text, "does not belong") != NULL);
	write_text("short.key", "{\"secret\": \"abc\"}");
	LS_CHECK(bus_curve_read_keyfile(path("short.key"), pub, sec, &err) <
	         0);
	LS_CHECK(strstr(err.text, "secret") != NULL);
	write_text("broken.key", "{");
	LS_CHECK(bus_curve_read_keyfile(path("broken.key"), pub, sec, &err) <
	         0);
	LS_CHECK(bus_curve_read_keyfile(path("missing.key"), pub, sec, &err) <
	         0);
	LS_CHECK(!bus_curve_key_valid(NULL));
	LS_CHECK(!bus_curve_key_valid("not a key"));
	LS_CHECK(bus_curve_public("short", pub) < 0);
}

LS_TEST(allow_list)
{
	char pub[BUS_CURVE_KEY_LEN + 1], sec[BUS_CURVE_KEY_LEN + 1];
	char text[512];
	char **keys = NULL;
	size_t n = 0;
	ls_error err = { 0 };

	LS_CHECK_INT(bus_curve_keypair(pub, sec), 0);
	snprintf(text, sizeof(text), "# gateways\n\n  %s  \r\n%s\n", pub, pub);
	write_text("allow", text);
	LS_CHECK_INT(bus_curve_read_allow(path("allow"), &keys, &n, &err), 0);
	LS_CHECK_INT(n, 2);
	LS_CHECK_STR(keys[0], pub);
	bus_curve_free_keys(keys, n);
	snprintf(text, sizeof(text), "%s\nnot-a-key\n", pub);
	write_text("bad-allow", text);
	LS_CHECK(bus_curve_read_allow(path("bad-allow"), &keys, &n, &err) < 0);
	LS_CHECK(strstr(err.text, ":2:") != NULL);
	write_text("empty-allow", "# nobody yet\n");
	LS_CHECK_INT(
	        bus_curve_read_allow(path("empty-allow"), &keys, &n, &err), 0);
	LS_CHECK_INT(n, 0);
	bus_curve_free_keys(keys, n);
}

LS_TEST(public_key_files)
{
	char pub[BUS_CURVE_KEY_LEN + 1], sec[BUS_CURVE_KEY_LEN + 1];
	char got[BUS_CURVE_KEY_LEN + 1], text[256];
	ls_error err = { 0 };
	int tries = 0;

	/* Z85 has '{' and '}': a key that starts like JSON is still a key. */
	do {
		LS_CHECK_INT(bus_curve_keypair(pub, sec), 0);
	} while (pub[0] != '{' && ++tries < 100000);
	LS_CHECK(pub[0] == '{');
	snprintf(text, sizeof(text), "# the broker\n%s\n", pub);
	write_text("brace.pub", text);
	LS_CHECK_INT(bus_curve_read_public(path("brace.pub"), got, &err), 0);
	LS_CHECK_STR(got, pub);
	LS_CHECK_INT(bus_curve_read_public(pub, got, &err), 0);
	LS_CHECK_STR(got, pub);
	/* A key file gives its public key. */
	snprintf(text, sizeof(text),
	         "{\"public\": \"%s\", \"secret\": \"%s\"}", pub, sec);
	write_text("pair.key", text);
	LS_CHECK_INT(bus_curve_read_public(path("pair.key"), got, &err), 0);
	LS_CHECK_STR(got, pub);
	write_text("junk.pub", "not a key\n");
	LS_CHECK(bus_curve_read_public(path("junk.pub"), got, &err) < 0);
	LS_CHECK(bus_curve_read_public(path("missing.pub"), got, &err) < 0);
}

static void __attribute__((constructor)) make_dir(void)
{
	if (mkdtemp(dir) == NULL) {
		abort();
	}
}

static void __attribute__((destructor)) remove_dir(void)
{
	const char *names[] = { "a.key",       "mismatch.key", "short.key",
		                "broken.key",  "allow",        "bad-allow",
		                "empty-allow", "brace.pub",    "pair.key",
		                "junk.pub" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		unlink(path(names[i]));
	}
	rmdir(dir);
}

LS_TEST_MAIN()
