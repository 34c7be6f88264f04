/* Internal to the services: shared state and argument helpers. */
#ifndef AS_SERVICES_IMPL_H
#define AS_SERVICES_IMPL_H

#include <stdatomic.h>
#include <stdbool.h>

#include "as_services.h"

#define AS__NSERVICES 3
#define AS__LOG       "appserver"
#define AS__ISSUE     "auth.issue" /* docs/architecture.md */

/* The message of every authentication failure: it never says why. */
#define AS__AUTH_FAILED "authentication failed"

struct as_services {
	as_store *store;
	bus_service table[AS__NSERVICES];
	bus_service issue_table[1];
	/*
	 * Key hashing (generateToken, revokeToken) running on the "auth"
	 * service's workers, which also validate tokens: at most
	 * shared_hashing_max at once (0: no limit), so validation always
	 * keeps a worker.
	 */
	atomic_int shared_hashing;
	int shared_hashing_max;
	/*
	 * A hash of a random password: unknown appKeys are checked against
	 * it so that they cost the same time as a wrong private key.
	 */
	char dummy_hash[LS_PASSWORD_HASH_MAX];
	as_change_fn on_change;
	void *on_change_user;
};

/* Report a change (no-op without a listener). */
void as__changed(as_services *svc, as_change_kind kind, const char *app_key,
                 const char *token_hash);

/*
 * Argument i of args as a string of 1..max bytes without NUL. A missing
 * or null argument is an error when required, else *out = NULL.
 */
int as__arg_string(json_t *args, size_t i, const char *name, bool required,
                   size_t max, const char **out, ls_error *err);

/* Argument i as a boolean (true/false, "true"/"false"); missing: dflt. */
int as__arg_bool(json_t *args, size_t i, const char *name, bool dflt,
                 bool *out, ls_error *err);

/*
 * Check publicKey/privateKey: LS_EAUTH "authentication failed" unless the
 * account exists and the private key verifies. On success *acc is filled
 * (as_account_clear() it).
 */
int as__authenticate(as_services *svc, const char *app_key,
                     const char *private_key, as_account *acc, ls_error *err);

/* The public view of an account (never the private key or its hash). */
json_t *as__account_view(const as_account *a, bool with_secret);

/* Operation tables. */
extern const bus_operation as__auth_ops[];
extern const size_t as__auth_nops;
extern const bus_operation as__issue_ops[];
extern const size_t as__issue_nops;
extern const bus_operation as__accounts_ops[];
extern const size_t as__accounts_nops;
extern const bus_operation as__db_ops[];
extern const size_t as__db_nops;

#endif
