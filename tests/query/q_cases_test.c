/*
 * Data-driven query tests: every directory under CASES_DIR holds
 *   query.json     the query text, compiled as is
 *   message.json   the message (any JSON value), or
 *   message.txt    a text message (delivered as a JSON string)
 *   expected.json  {"match": bool, "data": <delivered or null>}, or
 *                  {"error": "query_too_costly"}: over the cost budget
 *   error.txt      a substring of the invalid_query error text
 * One TAP line per case.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "q_query.h"

static char *
read_file(const char *dir, const char *name, size_t *len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *fp = fopen(path, "rb");
	if (fp == NULL) {
		return NULL;
	}
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);
	size_t r;
	while (buf != NULL && (r = fread(buf + n, 1, cap - n, fp)) > 0) {
		n += r;
		if (n == cap) {
			char *nb = realloc(buf, cap * 2 + 1);
			if (nb == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(fp);
	if (buf != NULL) {
		buf[n] = '\0';
		*len = n;
	}
	return buf;
}

static void
trim(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) {
		s[--n] = '\0';
	}
}

static void
diag_json(const char *what, const json_t *v)
{
	char *s = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	printf("#   %s: %s\n", what, s ? s : "(none)");
	free(s);
}

/* Returns NULL when the case passes, else why it failed. */
static const char *
run_case(const char *dir)
{
	static char why[512];
	size_t qlen = 0, len = 0;
	char *qtext = read_file(dir, "query.json", &qlen);
	char *errtext = read_file(dir, "error.txt", &len);
	char *mtext = NULL, *etext = NULL;
	json_t *msg = NULL, *expected = NULL, *got = NULL, *out = NULL;
	q_query *q = NULL;
	ls_error err;
	const char *fail = NULL;

	if (qtext == NULL) {
		fail = "no query.json";
		goto done;
	}
	int rc = q_query_compile_text(qtext, qlen, &q, &err);

	/* The parsed form must compile to the same verdict. */
	json_t *spec =
	        qlen <= Q_MAX_QUERY_BYTES
	                ? json_loadb(qtext, qlen,
	                             JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
	                             NULL)
	                : NULL;
	if (spec != NULL) {
		q_query *q2 = NULL;
		ls_error err2;
		int rc2 = q_query_compile(spec, &q2, &err2);
		json_decref(spec);
		q_query_destroy(&q2);
		if (rc2 != rc || (rc != 0 && strcmp(err.text, err2.text))) {
			snprintf(why, sizeof(why),
			         "q_query_compile disagrees: %d \"%s\"", rc2,
			         rc2 ? err2.text : "");
			fail = why;
			goto done;
		}
	}
	if (errtext != NULL) {
		trim(errtext);
		if (rc == 0) {
			fail = "compiled, expected an invalid_query error";
		} else if (rc != LS_EINVALIDQUERY ||
		           err.code != LS_EINVALIDQUERY) {
			fail = "wrong error code";
		} else if (strstr(err.text, errtext) == NULL) {
			snprintf(why, sizeof(why),
			         "error \"%s\" does not contain \"%s\"",
			         err.text, errtext);
			fail = why;
		}
		goto done;
	}
	if (rc != 0) {
		snprintf(why, sizeof(why), "compile failed: %s", err.text);
		fail = why;
		goto done;
	}
	if ((mtext = read_file(dir, "message.json", &len)) != NULL) {
		msg = json_loadb(mtext, len, JSON_DECODE_ANY, NULL);
	} else if ((mtext = read_file(dir, "message.txt", &len)) != NULL) {
		msg = json_stringn(mtext, len);
	}
	etext = read_file(dir, "expected.json", &len);
	expected = etext ? json_loadb(etext, len, 0, NULL) : NULL;
	if (msg == NULL || expected == NULL) {
		fail = "missing or unreadable message or expected file";
		goto done;
	}
	rc = q_query_apply(q, msg, &out);
	const char *want_error =
	        json_string_value(json_object_get(expected, "error"));
	if (want_error != NULL) {
		if (strcmp(want_error, "query_too_costly") != 0) {
			fail = "unknown error in expected.json";
		} else if (rc != LS_ECOSTLY || out != NULL) {
			snprintf(
			        why, sizeof(why),
			        "apply returned %d, expected query_too_costly",
			        rc);
			fail = why;
		}
		goto done;
	}
	if (rc < 0) {
		snprintf(why, sizeof(why), "apply failed: %d", rc);
		fail = why;
		goto done;
	}
	if (q_query_matches(q, msg) != (rc == 1)) {
		fail = "q_query_matches disagrees with q_query_apply";
		goto done;
	}
	got = json_pack("{s:b, s:O}", "match", rc == 1, "data",
	                out ? out : json_null());
	if (!json_equal(got, expected)) {
		diag_json("expected", expected);
		diag_json("got", got);
		fail = "wrong result";
	}
done:
	json_decref(got);
	json_decref(out);
	json_decref(expected);
	json_decref(msg);
	q_query_destroy(&q);
	free(qtext);
	free(errtext);
	free(mtext);
	free(etext);
	return fail;
}

static int
is_case(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

int
main(int argc, char **argv)
{
	struct dirent **list;
	int failed = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CASES_DIR\n", argv[0]);
		return 2;
	}
	int n = scandir(argv[1], &list, is_case, alphasort);
	if (n <= 0) {
		printf("1..0 # SKIP no cases in %s\n", argv[1]);
		return n < 0 ? 1 : 0;
	}
	printf("1..%d\n", n);
	for (int i = 0; i < n; i++) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/%s", argv[1], list[i]->d_name);
		const char *fail = run_case(dir);
		if (fail != NULL) {
			printf("not ok %d - %s\n#   %s\n", i + 1,
			       list[i]->d_name, fail);
			failed++;
		} else {
			printf("ok %d - %s\n", i + 1, list[i]->d_name);
		}
		free(list[i]);
	}
	free(list);
	q_query_thread_cleanup();
	return failed ? 1 : 0;
}
