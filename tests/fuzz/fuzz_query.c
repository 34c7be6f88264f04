/*
 * libFuzzer target for the query engine. Input: the query text, a newline,
 * then the message text (a message that is not JSON is a text message, as
 * on the pub/sub fabric). Compiles, evaluates and applies; checks that the
 * allocation-free test and the delivering apply agree, that neither goes
 * past the cost budget without saying so, and that compiling the parsed
 * query gives the same verdict as compiling its text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ls_json.h"
#include "q_query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nl = memchr(text, '\n', size);
	size_t qlen = nl ? (size_t)(nl - text) : size;
	const char *mtext = nl ? nl + 1 : "";
	size_t mlen = nl ? size - qlen - 1 : 0;
	q_query *q = NULL;
	ls_error err;

	int rc = q_query_compile_text(text, qlen, &q, &err);
	json_t *spec = json_loadb(
	        text, qlen, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	/* Same verdict unless the size limit sees the two differently:
	 * the text counts its white space, the parsed form its compact
	 * serialization (where reals may also grow: "1e-7"). */
	size_t compact = spec ? json_dumpb(spec, NULL, 0,
	                                   JSON_COMPACT | JSON_ENCODE_ANY)
	                      : 0;
	if (spec != NULL && compact <= qlen &&
	    (qlen <= Q_MAX_QUERY_BYTES) == (compact <= Q_MAX_QUERY_BYTES)) {
		q_query *q2 = NULL;
		ls_error err2;
		if (q_query_compile(spec, &q2, &err2) != rc ||
		    (rc != 0 && strcmp(err.text, err2.text) != 0)) {
			abort();
		}
		q_query_destroy(&q2);
	}
	json_decref(spec);
	if (rc != 0) {
		/* Every rejection must explain itself. */
		if (err.text[0] == '\0') {
			abort();
		}
		return 0;
	}
	json_t *msg = json_loadb(mtext, mlen, JSON_DECODE_ANY, NULL);
	if (msg == NULL) {
		msg = json_stringn(mtext, mlen);
	}
	if (msg != NULL) {
		json_t *out = NULL;
		long tsteps = 0, asteps = 0;
		int trc = q_query_test(q, msg, &tsteps);
		int arc = q_query_apply_steps(q, msg, &out, &asteps);
		/* The budget holds, and an evaluation over it reports so
		 * and delivers nothing. */
		if (tsteps < 0 || asteps < 0 ||
		    (trc != LS_ECOSTLY && tsteps > Q_EVAL_BUDGET) ||
		    (arc != LS_ECOSTLY && asteps > Q_EVAL_BUDGET) ||
		    (arc == LS_ECOSTLY && out != NULL)) {
			abort();
		}
		/* Both agree unless the budget cut one of them short (the
		 * test stops at the first matching element, apply visits
		 * them all). */
		if (trc != LS_ECOSTLY && arc >= 0 && trc != arc) {
			abort();
		}

		if (arc == 1) {
			/* what the gateway sends for a select subscription */
			char *s = ls_json_dumps(out, NULL);
			free(s);
		}
		json_decref(out);
		json_decref(msg);
	}
	q_query_destroy(&q);
	return 0;
}
