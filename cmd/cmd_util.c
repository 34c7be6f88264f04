/* Helpers shared by the server and admin commands (see cmd_util.h). */
#include "cmd_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

void
cmd_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "lightstream %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
cmd_settings_init(const char *cmd, ls_settings *s)
{
	if (ls_settings_init(s) != 0) {
		cmd_error(cmd, "out of memory");
		return CMD_EXIT_FAILURE;
	}
	return 0;
}

int
cmd_settings_option(const char *cmd, ls_settings *s, int opt, const char *arg,
                    cmd_option_fn more)
{
	ls_error err = { 0 };
	int rc = ls_settings_option(s, opt, arg, &err);

	if (rc == 0 && more != NULL) {
		rc = more(s, opt, arg, &err);
	}
	if (rc < 0) {
		cmd_error(cmd, "%s", err.text);
		return -1;
	}
	return rc;
}

int
cmd_parse_long(const char *arg, long min, long max, long *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < min || v > max) {
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int
cmd_option_long(const char *cmd, const char *name, const char *arg, long min,
                long max, const char *unit, long *out)
{
	if (cmd_parse_long(arg, min, max, out) != 0) {
		cmd_error(cmd, "--%s: expected %ld to %ld%s%s, not '%s'", name,
		          min, max, unit ? " " : "", unit ? unit : "", arg);
		return -EINVAL;
	}
	return 0;
}

int
cmd_no_operands(const char *cmd, int optind, int argc, char **argv)
{
	if (optind < argc) {
		cmd_error(cmd, "unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

int
cmd_apply_logging(const char *cmd, const ls_settings *s)
{
	ls_error err = { 0 };
	int rc = ls_settings_apply_logging(s, &err);

	if (rc != 0) {
		cmd_error(cmd, "%s", err.text);
	}
	return rc;
}

void
cmd_block_stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

int
cmd_wait_stop(const sigset_t *set)
{
	int sig = 0;

	sigwait(set, &sig);
	return sig;
}

void
cmd_on_stop_signals(void (*handler)(int sig))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

int
cmd_curve_option(cmd_curve *cc, int opt, const char *arg)
{
	if (opt == CMD_OPT_CURVE_SERVER_KEY) {
		cc->server_key = arg;
	} else if (opt == CMD_OPT_CURVE_KEYS) {
		cc->keys_path = arg;
	} else {
		return 0;
	}
	return 1;
}

int
cmd_curve_load(const char *cmd, cmd_curve *cc)
{
	ls_error err = { 0 };

	if ((cc->server_key == NULL) != (cc->keys_path == NULL)) {
		cmd_error(cmd, "CURVE needs both --curve-server-key and "
		               "--curve-keys");
		return -EINVAL;
	}
	if (cc->server_key == NULL) {
		return 0;
	}
	if (!bus_curve_key_valid(cc->server_key)) {
		cmd_error(cmd, "--curve-server-key: not a Z85 public key");
		return -EINVAL;
	}
	if (bus_curve_read_keyfile(cc->keys_path, cc->public_key,
	                           cc->secret_key, &err) != 0) {
		cmd_error(cmd, "%s", err.text);
		return -EIO;
	}
	cc->keys.server_public = cc->server_key;
	cc->keys.public_key = cc->public_key;
	cc->keys.secret_key = cc->secret_key;
	return 0;
}

const bus_curve_keys *
cmd_curve_keys(const cmd_curve *cc)
{
	return cc->keys.server_public != NULL ? &cc->keys : NULL;
}

void
cmd_curve_clear(cmd_curve *cc)
{
	explicit_bzero(cc->secret_key, sizeof(cc->secret_key));
}
