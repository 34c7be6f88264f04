/* Helpers shared by the server and admin commands (see cmd_util.h). */
#include "cmd_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
cmd_make_data_dir(const char *dir)
{
	char path[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path)) {
		return -EINVAL;
	}
	memcpy(path, dir, n + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(path, 0750) != 0 && errno != EEXIST) {
				return -errno;
			}
			*p = '/';
		}
	}
	if (mkdir(path, 0750) != 0 && errno != EEXIST) {
		return -errno;
	}
	return 0;
}
