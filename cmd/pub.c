/*
 * `lightstream pub OWNER/STREAM MESSAGE|-`: publish over WebSocket
 * (docs/protocol.md) and wait until the server acknowledged every message.
 * MESSAGE is JSON, or text sent as a JSON string; `-` publishes each line
 * of stdin as one message, in order.
 *
 * With `-`, a reader thread turns stdin into lsc_client_publish() calls
 * (thread-safe, docs/c-client.md) while the main thread runs the client's
 * loop: a line is sent as soon as it is read.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "cmd_util.h"
#include "ls_log.h"
#include "ls_settings.h"
#include "ls_time.h"
#include "lsc.h"
#include "lsc_cli.h"

#define PUB_LOG         "pub"
#define PUB_DEFAULT_URL "ws://127.0.0.1:8080"
#define PUB_LINE_MAX    (1024 * 1024)
#define PUB_TIMEOUT_MS  10000

/* stdin split into lines. */
typedef struct pub_lines {
	char *buf;
	size_t len, cap;
	bool eof;
	long lines; /* lines handed out so far */
} pub_lines;

/*
 * Fields marked "atomic" are shared by the reader thread and the loop's
 * thread and accessed with __atomic builtins only.
 */
typedef struct pub_state {
	lsc_cli_session ses; /* target, connection, exit status (loop) */
	lsc_client *c;
	const char *owner, *stream;
	bool as_text;
	pub_lines in;        /* reader thread only */
	long published;      /* atomic */
	long acked;          /* atomic */
	bool input_done;     /* atomic: nothing more will be published */
	int input_status;    /* atomic: the reader's exit status, or -1 */
	bool quit;           /* atomic: the reader must stop */
	int64_t progress_ms; /* atomic: last time something moved */
	bool closed;
} pub_state;

#define PUB_LOAD(p)     __atomic_load_n(p, __ATOMIC_ACQUIRE)
#define PUB_STORE(p, v) __atomic_store_n(p, v, __ATOMIC_RELEASE)

static void
pub_usage(FILE *out)
{
	fprintf(out,
	        "Usage: lightstream pub [OPTIONS] OWNER/STREAM MESSAGE|-\n"
	        "\n"
	        "Publish MESSAGE (JSON; other text is sent as a JSON "
	        "string; text that\n"
	        "starts like JSON but does not parse is refused), or with "
	        "`-`\n"
	        "every non-empty line of stdin as one message, in order; "
	        "wait until the\n"
	        "server acknowledged each one.\n"
	        "\n"
	        "Options:\n"
	        "  -u, --url URL       gateway, ws://HOST:PORT or wss://... "
	        "(default\n"
	        "                      " PUB_DEFAULT_URL ")\n"
	        "  -a, --app APPKEY    the account's app key (required)\n"
	        "  -t, --token TOKEN   a token (or @FILE) (required)\n"
	        "  -s, --secret KEY    the account's secret key: answers "
	        "web-token\n"
	        "                      challenges (or @FILE)\n"
	        "  -T, --timeout S     give up when the server made no "
	        "progress for S\n"
	        "                      seconds (default 10)\n"
	        "      --text          send MESSAGE (or each line) as a "
	        "text message,\n"
	        "                      even when it looks like JSON\n"
	        "      --ca-file FILE  CA certificates (PEM) for wss://\n"
	        "  -k, --insecure      accept any server certificate "
	        "(development)\n"
	        "      --log-level L   debug, info (default), warn, error, "
	        "off\n"
	        "      --log-format F  text or json (stderr)\n"
	        "      --config FILE   read log.* settings from a "
	        "configuration file\n"
	        "  -h, --help          this help\n"
	        "\n"
	        "Exit status: 0 every message acknowledged; 1 "
	        "authentication failed,\n"
	        "forbidden, connection failed or lost, timeout; 2 bad "
	        "arguments.\n");
}

static void
pub_on_connect(lsc_client *c, const char *connection_id,
               const char *expires_at, bool reconnected, void *user)
{
	pub_state *st = user;

	st->ses.connected = true;
	PUB_STORE(&st->progress_ms, ls_now_ms());
	ls_debug(PUB_LOG, "connected to %s", st->ses.url);
}

static void
pub_on_ack(lsc_client *c, const char *request_id, bool ok, const char *code,
           const char *message, void *user)
{
	pub_state *st = user;

	PUB_STORE(&st->progress_ms, ls_now_ms());
	if (ok) {
		__atomic_add_fetch(&st->acked, 1, __ATOMIC_ACQ_REL);
		return;
	}
	if (st->ses.finished) {
		return;
	}
	if (strcmp(code, "unavailable") == 0 && st->ses.err_code[0] != '\0') {
		/* The connection went down; its reason is more useful. */
		return;
	}
	lsc_cli_session_refused(c, &st->ses, code, message);
}

static void
pub_on_error(lsc_client *c, const char *code, const char *message, void *user)
{
	pub_state *st = user;

	lsc_cli_session_error(&st->ses, code, message);
}

static void
pub_on_close(lsc_client *c, int code, const char *reason, bool reconnecting,
             void *user)
{
	pub_state *st = user;

	st->closed = true;
	lsc_cli_session_closed(c, &st->ses, code, reason);
}

/*
 * Next complete line of stdin (without its newline) as a new string in
 * *line, waiting at most wait_ms for input. Returns 1 with a line, 0 when
 * none is ready yet, -1 at end of input, -E2BIG for a line above the
 * limit, -EIO.
 */
static int
pub_next_line(pub_lines *in, int wait_ms, char **line)
{
	for (;;) {
		char *nl = in->len ? memchr(in->buf, '\n', in->len) : NULL;
		struct pollfd pfd = { .fd = 0, .events = POLLIN };
		ssize_t n;

		if (nl != NULL || (in->eof && in->len > 0)) {
			size_t k =
			        nl != NULL ? (size_t)(nl - in->buf) : in->len;
			size_t used = nl != NULL ? k + 1 : k;

			if (k > 0 && in->buf[k - 1] == '\r') {
				k--;
			}
			*line = strndup(in->buf, k);
			if (*line == NULL) {
				return -ENOMEM;
			}
			memmove(in->buf, in->buf + used, in->len - used);
			in->len -= used;
			in->lines++;
			return 1;
		}
		if (in->eof) {
			return -1;
		}
		if (in->len >= PUB_LINE_MAX) {
			return -E2BIG;
		}
		if (poll(&pfd, 1, wait_ms) <= 0) {
			return 0;
		}
		if (in->cap - in->len < 4096) {
			size_t cap = in->cap ? in->cap * 2 : 16384;
			char *p = realloc(in->buf, cap);

			if (p == NULL) {
				return -ENOMEM;
			}
			in->buf = p;
			in->cap = cap;
		}
		n = read(0, in->buf + in->len, in->cap - in->len);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				return 0;
			}
			return -EIO;
		}
		if (n == 0) {
			in->eof = true;
		}
		in->len += (size_t)n;
		wait_ms = 0;
	}
}

/*
 * Publish msg (borrowed), on any thread. 1 published, 0 queue full (retry
 * later), or an exit status < 0 (negated).
 */
static int
pub_one(pub_state *st, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT | JSON_ENCODE_ANY);
	int rc;

	if (text == NULL) {
		fprintf(stderr, "lightstream pub: out of memory\n");
		return -CMD_EXIT_FAILURE;
	}
	rc = lsc_client_publish(st->c, st->owner, st->stream, text,
	                        strlen(text), pub_on_ack, st, NULL);
	free(text);
	if (rc == 0) {
		__atomic_add_fetch(&st->published, 1, __ATOMIC_ACQ_REL);
		PUB_STORE(&st->progress_ms, ls_now_ms());
		return 1;
	}
	if (rc == -ENOBUFS) {
		return 0;
	}
	if (rc == LSC_EFORBIDDEN) {
		fprintf(stderr,
		        "lightstream pub: forbidden: the token's roles do not "
		        "grant writing %s\n",
		        st->ses.target);
		return -CMD_EXIT_FAILURE;
	}
	fprintf(stderr, "lightstream pub: cannot publish: %s\n",
	        lsc_strerror(rc));
	return rc == LSC_ETOOLARGE ? -CMD_EXIT_USAGE : -CMD_EXIT_FAILURE;
}

/* Publish msg (taken), waiting while the outgoing queue is full. Returns
 * 0, or the exit status when the run must end. */
static int
pub_push(pub_state *st, json_t *msg)
{
	const struct timespec pause = { 0, 2 * 1000 * 1000 };
	int r;

	while ((r = pub_one(st, msg)) == 0 && !PUB_LOAD(&st->quit)) {
		nanosleep(&pause, NULL); /* the loop is sending */
	}
	json_decref(msg);
	return r < 0 ? -r : 0;
}

/*
 * The reader thread: every non-empty line of stdin becomes a publish.
 * Ends at end of input, on a bad line (what came before it is still
 * published and acknowledged), or when told to quit.
 */
static void *
pub_reader(void *arg)
{
	pub_state *st = arg;
	int status = -1;
	char why[256];

	while (!PUB_LOAD(&st->quit)) {
		char *line = NULL;
		json_t *msg;
		int r = pub_next_line(&st->in, 100, &line);

		if (r == 0) {
			continue;
		}
		if (r == -1) {
			break;
		}
		if (r < 0) {
			fprintf(stderr,
			        "lightstream pub: cannot read stdin: %s\n",
			        r == -E2BIG ? "line too long" : strerror(-r));
			status = CMD_EXIT_USAGE;
			break;
		}
		PUB_STORE(&st->progress_ms, ls_now_ms());
		if (*line == '\0') {
			free(line);
			continue;
		}
		msg = lsc_cli_message(line, strlen(line), st->as_text, why,
		                      sizeof(why));
		free(line);
		if (msg == NULL) {
			/* Publish nothing after a bad line, but finish what
			 * came before it. */
			fprintf(stderr,
			        "lightstream pub: line %ld of stdin: %s\n",
			        st->in.lines, why);
			status = CMD_EXIT_USAGE;
			break;
		}
		r = pub_push(st, msg);
		if (r != 0) {
			status = r;
			break;
		}
	}
	PUB_STORE(&st->input_status, status);
	PUB_STORE(&st->input_done, true);
	lsc_client_stop(st->c); /* thread-safe: the loop looks again */
	return NULL;
}

/* The loop can return: the run is over, or input ended and acks arrived. */
static bool
pub_done(lsc_client *c, void *user)
{
	pub_state *st = user;

	return st->ses.finished || lsc_cli_stop_requested() ||
	       (PUB_LOAD(&st->input_done) &&
	        PUB_LOAD(&st->acked) == PUB_LOAD(&st->published));
}

int
cmd_pub(int argc, char **argv)
{
	static const struct option own[] = {
		LSC_CLI_CONN_OPTIONS,
		{ "timeout", required_argument, NULL, 'T' },
		{ "text", no_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct option opts[48];
	pub_state st;
	ls_settings settings;
	lsc_error err;
	lsc_cli_conn conn;
	lsc_options *o = &conn.o;
	lsc_client *c = NULL;
	json_t *pending = NULL;
	char owner[65], stream[129];
	long timeout_ms = PUB_TIMEOUT_MS;
	bool from_stdin, as_text = false, reader_started = false;
	pthread_t reader;
	char why[256];
	int opt, rc = CMD_EXIT_USAGE;

	memset(&st, 0, sizeof(st));
	st.input_status = -1;
	st.ses.cmd = "pub";
	lsc_cli_conn_init(&conn, PUB_DEFAULT_URL);
	if (cmd_settings_init("pub", &settings) != 0) {
		return CMD_EXIT_FAILURE;
	}
	lsc_cli_options(own, opts, 48);
	optind = 1;
	while ((opt = getopt_long(argc, argv, LSC_CLI_CONN_SHORT "T:h", opts,
	                          NULL)) != -1) {
		switch (opt) {
		case 'T':
			if (lsc_cli_timeout_option("pub", optarg, -1,
			                           &timeout_ms) != 0) {
				goto out;
			}
			break;
		case 'x':
			as_text = true;
			break;
		case 'h':
			pub_usage(stdout);
			rc = CMD_EXIT_OK;
			goto out;
		default:
			if (lsc_cli_conn_option("pub", &conn, &settings, opt,
			                        optarg) != 1) {
				goto out;
			}
			break;
		}
	}
	if (cmd_apply_logging("pub", &settings) != 0) {
		goto out;
	}
	if (optind + 2 != argc) {
		rc = lsc_cli_usage_error("pub", "%s",
		                         "expected OWNER/STREAM and "
		                         "MESSAGE (or - for stdin)");
		goto out;
	}
	if (lsc_cli_session_target(&st.ses, argv[optind], owner, stream) !=
	    0) {
		goto out;
	}
	if (lsc_cli_conn_check("pub", &conn) != 0) {
		goto out;
	}
	from_stdin = strcmp(argv[optind + 1], "-") == 0;
	if (!from_stdin) {
		pending = lsc_cli_message(argv[optind + 1],
		                          strlen(argv[optind + 1]), as_text,
		                          why, sizeof(why));
		if (pending == NULL) {
			rc = lsc_cli_usage_error("pub", "%s", why);
			goto out;
		}
	}
	st.ses.url = o->url;
	o->reconnect = false; /* acks of a lost connection are unknown */
	o->cb.on_connect = pub_on_connect;
	o->cb.on_error = pub_on_error;
	o->cb.on_close = pub_on_close;
	o->user = &st;
	c = lsc_client_new(o, &err);
	if (c == NULL) {
		rc = lsc_cli_usage_error("pub", "%s", err.text);
		goto out;
	}
	lsc_cli_catch_stop_signals();
	st.c = c;
	st.owner = owner;
	st.stream = stream;
	st.as_text = as_text;
	st.progress_ms = ls_now_ms();
	if (lsc_client_connect(c) != 0) {
		fprintf(stderr, "lightstream pub: cannot connect to %s\n",
		        st.ses.url);
		rc = CMD_EXIT_FAILURE;
		goto out;
	}
	if (from_stdin) {
		if (pthread_create(&reader, NULL, pub_reader, &st) != 0) {
			fprintf(stderr, "lightstream pub: cannot start the "
			                "stdin reader\n");
			rc = CMD_EXIT_FAILURE;
			goto out;
		}
		reader_started = true;
	} else {
		/* Queued until authenticated. */
		int r = pub_one(&st, pending);

		if (r < 0) {
			rc = -r;
			goto out;
		}
		PUB_STORE(&st.input_done, true);
	}

	/* Slices of at most 100 ms: the progress deadline and the stop
	 * signals are looked at between them. */
	while (!st.ses.finished && !lsc_cli_stop_requested()) {
		int input_status = PUB_LOAD(&st.input_status);
		bool input_done = PUB_LOAD(&st.input_done);
		long published = PUB_LOAD(&st.published);
		long acked = PUB_LOAD(&st.acked);
		int r;

		if (input_done && input_status > 0 &&
		    input_status != CMD_EXIT_USAGE) {
			/* The server refused a publish (reported). */
			st.ses.finished = true;
			st.ses.status = input_status;
			break;
		}
		if (input_done && acked == published) {
			st.ses.finished = true;
			st.ses.status =
			        input_status > 0 ? input_status : CMD_EXIT_OK;
			break;
		}
		if (ls_now_ms() - PUB_LOAD(&st.progress_ms) > timeout_ms &&
		    (!input_done || acked < published) &&
		    (acked < published || lsc_client_queued_bytes(c) > 0)) {
			fprintf(stderr,
			        "lightstream pub: timed out: %ld of %ld "
			        "messages acknowledged\n",
			        acked, published);
			st.ses.finished = true;
			st.ses.status = CMD_EXIT_FAILURE;
			break;
		}
		r = lsc_client_run_until(c, pub_done, &st, 100);
		if (r < 0 && r != LSC_ETIMEOUT) {
			fprintf(stderr,
			        "lightstream pub: event loop failed\n");
			st.ses.finished = true;
			st.ses.status = CMD_EXIT_FAILURE;
		}
	}
	PUB_STORE(&st.quit, true);
	if (reader_started) {
		pthread_join(reader, NULL);
		reader_started = false;
	}
	rc = st.ses.finished ? st.ses.status : CMD_EXIT_FAILURE;
	if (!st.ses.finished) {
		fprintf(stderr,
		        "lightstream pub: interrupted: %ld of %ld "
		        "messages acknowledged\n",
		        PUB_LOAD(&st.acked), PUB_LOAD(&st.published));
	}
	if (rc == CMD_EXIT_OK) {
		long acked = PUB_LOAD(&st.acked);

		ls_info(PUB_LOG, "%ld message%s published to %s", acked,
		        acked == 1 ? "" : "s", st.ses.target);
	}
	/* Say goodbye properly; a peer reading a 1006 would log noise. */
	if (c != NULL && !st.closed) {
		lsc_client_close(c);
		for (int i = 0; i < 10 && !st.closed; i++) {
			lsc_client_run(c, 100);
		}
	}

out:
	if (reader_started) {
		PUB_STORE(&st.quit, true);
		pthread_join(reader, NULL);
	}
	json_decref(pending);
	lsc_client_destroy(&c);
	free(st.in.buf);
	lsc_cli_conn_clear(&conn);
	ls_settings_clear(&settings);
	return rc;
}
