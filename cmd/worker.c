/*
 * `lightstream worker --service NAME -- PROGRAM [ARGS...]`: any program as
 * a service-bus service (docs/bus.md, "Script services").
 *
 * One process per request: the request {"o": operation, "a": [...]} is
 * written to the program's stdin as one line, then stdin is closed; the
 * program's stdout is the reply; its exit status says whether it is a
 * result or an error; stderr goes to the log. Why one process per request
 * rather than one long-lived process reading lines: a script that crashes,
 * hangs or leaks state affects one request only, the exit status carries
 * success or failure without an in-band framing the script could get
 * wrong, and any program that reads stdin and writes stdout works
 * unchanged. The cost, a fork and exec per request (about a millisecond),
 * is small next to what scripts do. --workers bounds how many run at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "bus_worker.h"
#include "cmd.h"
#include "cmd_bus.h"
#include "cmd_util.h"
#include "ls_log.h"
#include "ls_proto.h"
#include "ls_settings.h"
#include "ls_time.h"

#define WORKER_LOG "worker"

extern char **environ;

enum {
	OPT_SERVICE = 0x2100,
	OPT_WORKERS,
	OPT_TIMEOUT,
	OPT_MAX_OUTPUT,
	OPT_HEARTBEAT,
	OPT_HELP,
};

typedef struct script {
	const char *service;
	char **argv;     /* PROGRAM ARGS..., NULL-terminated (borrowed) */
	long timeout_ms; /* per request */
	long max_output; /* bytes of stdout kept */
} script;

static void
worker_usage(FILE *out)
{
	fprintf(out,
	        "Usage: lightstream worker --service NAME [OPTIONS] -- "
	        "PROGRAM "
	        "[ARGS...]\n"
	        "\n"
	        "Serve the bus service NAME with PROGRAM: for each request "
	        "PROGRAM runs once,\n"
	        "reads the request {\"o\": operation, \"a\": [arguments]} as "
	        "one line on stdin\n"
	        "and writes the reply on stdout (JSON; other text is a JSON "
	        "string). Exit\n"
	        "status 0 is a result; any other is an error: stdout may then "
	        "be\n"
	        "{\"code\",\"message\"} with a code of docs/protocol.md, "
	        "otherwise the error is\n"
	        "server_error. A request running past --timeout is killed and "
	        "answered\n"
	        "timeout. stderr lines go to the log. The environment has "
	        "LIGHTSTREAM_SERVICE\n"
	        "and LIGHTSTREAM_OPERATION. See docs/bus.md.\n"
	        "\n"
	        "Options:\n"
	        "%s"
	        "  --service NAME           the service to serve (required)\n"
	        "  --workers N              requests served at once (2)\n"
	        "  --timeout MS             per request (5000)\n"
	        "  --max-output BYTES       largest reply kept (1048576)\n"
	        "  --heartbeat-ms MS        bus heartbeat, same as the "
	        "broker's (2500)\n"
	        "  -h, --help               this help\n"
	        "\n"
	        "Exit status: 0 stopped by SIGTERM/SIGINT; 1 cannot start; 2 "
	        "bad arguments.\n",
	        ls_settings_help_for(LS_OPTS_BACKEND | LS_OPTS_BUS_PEER));
}

/* Append up to room bytes read from fd to buf; 0 at EOF, 1 more to come. */
static int
script_drain(int fd, char *buf, size_t *len, size_t cap, bool *over)
{
	char tmp[4096];
	ssize_t n = read(fd, tmp, sizeof(tmp));

	if (n < 0) {
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	}
	if (n == 0) {
		return 0;
	}
	if (*len + (size_t)n > cap) {
		*over = true;
		n = (ssize_t)(cap - *len);
	}
	memcpy(buf + *len, tmp, (size_t)n);
	*len += (size_t)n;
	return 1;
}

/* Log complete stderr lines of the program, keep the rest for later. */
static void
script_log_lines(const script *sc, char *buf, size_t *len, bool flush)
{
	size_t start = 0;

	for (size_t i = 0; i < *len; i++) {
		if (buf[i] == '\n') {
			ls_warn(WORKER_LOG, "%s: %.*s", sc->service,
			        (int)(i - start), buf + start);
			start = i + 1;
		}
	}
	if (flush && start < *len) {
		ls_warn(WORKER_LOG, "%s: %.*s", sc->service,
		        (int)(*len - start), buf + start);
		start = *len;
	}
	memmove(buf, buf + start, *len - start);
	*len -= start;
}

/* The error a failed program reported on stdout, when it is one of ours. */
static int
script_reported_error(const char *out, size_t len, ls_error *err)
{
	json_t *j = json_loadb(out, len, 0, NULL);
	const ls_proto_error *row = ls_proto_error_by_name(
	        json_string_value(json_object_get(j, "code")));
	const char *msg = json_string_value(json_object_get(j, "message"));
	int rc = 0;

	if (row != NULL) {
		rc = ls_error_set(err, row->errcode, "%s",
		                  msg ? msg : row->name);
	}
	json_decref(j);
	return rc;
}

/* Run the program for one request (bus_op_fn for the "*" operation). */
static int
script_run(void *ctx, json_t *req, json_t **result, ls_error *err)
{
	const script *sc = ctx;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	char *line = NULL, *obuf = NULL, ebuf[2048];
	size_t olen = 0, elen = 0;
	bool over = false, out_open = true, err_open = true, timed_out = false;
	char env_service[256], env_op[256];
	char **envp = NULL;
	size_t nenv = 0;
	pid_t pid = -1;
	int status = 0, rc;
	int64_t deadline;

	line = json_dumps(req, JSON_COMPACT);
	obuf = malloc((size_t)sc->max_output + 1);
	if (line == NULL || obuf == NULL) {
		rc = ls_error_set(err, LS_ESERVER, "out of memory");
		goto out;
	}
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
	    pipe2(errp, O_CLOEXEC) != 0) {
		rc = ls_error_set(err, LS_EUNAVAILABLE, "cannot start %s: %s",
		                  sc->argv[0], strerror(errno));
		goto out;
	}
	while (environ[nenv] != NULL) {
		nenv++;
	}
	envp = calloc(nenv + 3, sizeof(*envp));
	if (envp == NULL) {
		rc = ls_error_set(err, LS_ESERVER, "out of memory");
		goto out;
	}
	for (size_t i = 0, k = 0; i < nenv; i++) {
		if (strncmp(environ[i], "LIGHTSTREAM_SERVICE=", 20) != 0 &&
		    strncmp(environ[i], "LIGHTSTREAM_OPERATION=", 22) != 0) {
			envp[k++] = environ[i];
		}
	}
	snprintf(env_service, sizeof(env_service), "LIGHTSTREAM_SERVICE=%s",
	         sc->service);
	snprintf(env_op, sizeof(env_op), "LIGHTSTREAM_OPERATION=%s",
	         json_string_value(json_object_get(req, "o")));
	for (size_t k = 0;; k++) {
		if (envp[k] == NULL) {
			envp[k] = env_service;
			envp[k + 1] = env_op;
			break;
		}
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
	posix_spawnattr_init(&attr);
	/* Its own process group: a timeout kills what it started too; and
	 * the signals the command blocks are not blocked for it. */
	{
		sigset_t none;
		sigemptyset(&none);
		posix_spawnattr_setsigmask(&attr, &none);
	}
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
	                                        POSIX_SPAWN_SETSIGMASK);
	rc = posix_spawnp(&pid, sc->argv[0], &fa, &attr, sc->argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(in[0]);
	close(out[1]);
	close(errp[1]);
	in[0] = out[1] = errp[1] = -1;
	if (rc != 0) {
		pid = -1;
		rc = ls_error_set(err, LS_EUNAVAILABLE, "cannot start %s: %s",
		                  sc->argv[0], strerror(rc));
		goto out;
	}
	/* The request is one short line; a program that does not read it
	 * gets EPIPE here, which is its business. */
	{
		size_t n = strlen(line);
		if (write(in[1], line, n) != (ssize_t)n ||
		    write(in[1], "\n", 1) != 1) {
			ls_debug(WORKER_LOG,
			         "%s: the program did not read its "
			         "request",
			         sc->service);
		}
		close(in[1]);
		in[1] = -1;
	}
	deadline = ls_now_ms() + sc->timeout_ms;
	while (out_open || err_open) {
		struct pollfd p[2] = { { out_open ? out[0] : -1, POLLIN, 0 },
			               { err_open ? errp[0] : -1, POLLIN,
			                 0 } };
		int64_t left = deadline - ls_now_ms();

		if (left <= 0) {
			timed_out = true;
			break;
		}
		if (poll(p, 2, (int)left) < 0 && errno != EINTR) {
			break;
		}
		if (out_open &&
		    (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			out_open = script_drain(out[0], obuf, &olen,
			                        (size_t)sc->max_output,
			                        &over) == 1;
		}
		if (err_open &&
		    (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			if (elen == sizeof(ebuf)) {
				script_log_lines(sc, ebuf, &elen, true);
			}
			bool ignored = false;
			err_open = script_drain(errp[0], ebuf, &elen,
			                        sizeof(ebuf), &ignored) == 1;
			script_log_lines(sc, ebuf, &elen, !err_open);
		}
	}
	if (timed_out) {
		kill(-pid, SIGKILL);
		waitpid(pid, &status, 0);
		pid = -1;
		rc = ls_error_set(err, LS_ETIMEOUT,
		                  "%s.%s did not answer within %ld ms",
		                  sc->service,
		                  json_string_value(json_object_get(req, "o")),
		                  sc->timeout_ms);
		goto out;
	}
	/* Both pipes closed: the program is exiting; wait, bounded. */
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (ls_now_ms() >= deadline) {
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		usleep(1000);
	}
	pid = -1;
	while (olen > 0 &&
	       (obuf[olen - 1] == '\n' || obuf[olen - 1] == '\r')) {
		olen--;
	}
	obuf[olen] = '\0';
	if (WIFSIGNALED(status)) {
		rc = ls_error_set(err, LS_ESERVER,
		                  "%s.%s: the program was "
		                  "killed by signal %d",
		                  sc->service,
		                  json_string_value(json_object_get(req, "o")),
		                  WTERMSIG(status));
		goto out;
	}
	if (WEXITSTATUS(status) != 0) {
		rc = script_reported_error(obuf, olen, err);
		if (rc == 0) {
			rc = ls_error_set(
			        err, LS_ESERVER,
			        "%s.%s: the program exited with status "
			        "%d",
			        sc->service,
			        json_string_value(json_object_get(req, "o")),
			        WEXITSTATUS(status));
		}
		goto out;
	}
	if (over) {
		rc = ls_error_set(err, LS_ETOOLARGE,
		                  "the reply is larger than %ld bytes",
		                  sc->max_output);
		goto out;
	}
	*result = json_loadb(obuf, olen, JSON_DECODE_ANY, NULL);
	if (*result == NULL) {
		*result = json_stringn(obuf, olen);
	}
	rc = *result ? 0
	             : ls_error_set(err, LS_ESERVER,
	                            "the reply is not UTF-8 text");
out:
	if (pid > 0) {
		kill(-pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0) {
			close(in[i]);
		}
		if (out[i] >= 0) {
			close(out[i]);
		}
		if (errp[i] >= 0) {
			close(errp[i]);
		}
	}
	free(envp);
	free(line);
	free(obuf);
	return rc;
}

int
cmd_worker(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "service", required_argument, NULL, OPT_SERVICE },
		{ "workers", required_argument, NULL, OPT_WORKERS },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "max-output", required_argument, NULL, OPT_MAX_OUTPUT },
		{ "heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct option opts[40];
	ls_settings s;
	ls_error err = { 0 };
	script sc = { .timeout_ms = 5000, .max_output = 1 << 20 };
	cmd_bus bus = { 0 };
	bus_worker_pool *pool = NULL;
	bus_worker_options wo = { 0 };
	long workers = 2, heartbeat = -1;
	void *ctx = NULL;
	sigset_t set;
	int status = CMD_EXIT_USAGE, c, sig;

	if (cmd_settings_init("worker", &s) != 0) {
		return CMD_EXIT_FAILURE;
	}
	ls_settings_options_merge_for(LS_OPTS_BACKEND | LS_OPTS_BUS_PEER,
	                              extra, opts, 40);
	optind = 1;
	/* "+": options end at PROGRAM, whose own options follow it. */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		int rc = cmd_settings_option("worker", &s, c, optarg, NULL);
		if (rc == 1) {
			continue;
		}
		if (rc < 0) {
			goto out;
		}
		switch (c) {
		case OPT_SERVICE:
			sc.service = optarg;
			break;
		case OPT_WORKERS:
			if (cmd_option_long("worker", "workers", optarg, 1, 64,
			                    NULL, &workers) != 0) {
				goto out;
			}
			break;
		case OPT_TIMEOUT:
			if (cmd_option_long("worker", "timeout", optarg, 1,
			                    3600000, "ms",
			                    &sc.timeout_ms) != 0) {
				goto out;
			}
			break;
		case OPT_MAX_OUTPUT:
			if (cmd_option_long("worker", "max-output", optarg, 1,
			                    16 << 20, "bytes",
			                    &sc.max_output) != 0) {
				goto out;
			}
			break;
		case OPT_HEARTBEAT:
			if (cmd_option_long("worker", "heartbeat-ms", optarg,
			                    10, 600000, NULL,
			                    &heartbeat) != 0) {
				goto out;
			}
			break;
		case 'h':
		case OPT_HELP:
			worker_usage(stdout);
			status = CMD_EXIT_OK;
			goto out;
		default:
			worker_usage(stderr);
			goto out;
		}
	}
	if (sc.service == NULL) {
		cmd_error("worker", "--service NAME is required");
		goto out;
	}
	/* Service names share the stream grammar; mmi.* is the broker's. */
	if (!ls_valid_stream(sc.service) ||
	    strncmp(sc.service, "mmi.", 4) == 0) {
		cmd_error("worker",
		          "--service: '%s' is not a service name "
		          "([A-Za-z0-9_.-]{1,128}, not mmi.*)",
		          sc.service);
		goto out;
	}
	if (optind >= argc) {
		cmd_error("worker", "expected -- PROGRAM [ARGS...]");
		goto out;
	}
	sc.argv = argv + optind;
	if (cmd_apply_logging("worker", &s) != 0 ||
	    cmd_bus_peer("worker", &s, s.bus_backend, &bus) != 0) {
		goto out;
	}
	status = CMD_EXIT_FAILURE;
	cmd_block_stop_signals(&set);
	ctx = zmq_ctx_new();
	if (ctx == NULL) {
		cmd_error("worker", "zmq: %s", zmq_strerror(errno));
		goto out;
	}
	{
		static const bus_operation ops[] = { { "*", script_run } };
		bus_service svc = { sc.service, ops, 1, &sc };

		wo.heartbeat_ms =
		        (int)(heartbeat > 0 ? heartbeat : s.heartbeat_ms);
		wo.curve = cmd_bus_keys(&bus);
		pool = bus_worker_pool_start(ctx, s.bus_backend, &svc, 1,
		                             (int)workers, &wo, &err);
		if (pool == NULL) {
			cmd_error("worker", "%s", err.text);
			goto out;
		}
		ls_info(WORKER_LOG,
		        "serving %s with %s (%ld at once, timeout %ld ms) on "
		        "%s",
		        sc.service, sc.argv[0], workers, sc.timeout_ms,
		        s.bus_backend);
		sig = cmd_wait_stop(&set);
		ls_info(WORKER_LOG, "%s: stopping", strsignal(sig));
		bus_worker_pool_stop(&pool);
	}
	status = CMD_EXIT_OK;
out:
	bus_worker_pool_stop(&pool);
	if (ctx != NULL) {
		zmq_ctx_term(ctx);
	}
	cmd_bus_clear(&bus);
	ls_settings_clear(&s);
	return status;
}
