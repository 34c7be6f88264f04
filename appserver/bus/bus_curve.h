/*
 * Optional CURVE security of the service bus (docs/bus.md): the broker is a
 * CURVE server on both endpoints; clients and workers are CURVE clients
 * that know the broker's public key. The broker may restrict which public
 * keys may connect (an allow-list checked through ZAP). Keys are Z85 text,
 * 40 characters.
 */
#ifndef BUS_CURVE_H
#define BUS_CURVE_H

#include <stddef.h>

#include "ls_error.h"

#define BUS_CURVE_KEY_LEN 40 /* Z85 characters of a key */

/* A client's or worker's keys; every string is borrowed. */
typedef struct bus_curve_keys {
	const char *server_public; /* the broker's public key */
	const char *public_key;    /* our own key pair */
	const char *secret_key;
} bus_curve_keys;

/* A new key pair. Returns 0 or a negative error (-ENOTSUP). */
int bus_curve_keypair(char public_key[BUS_CURVE_KEY_LEN + 1],
                      char secret_key[BUS_CURVE_KEY_LEN + 1]);

/* The public key of a secret key. Returns 0 or -EINVAL. */
int bus_curve_public(const char *secret_key,
                     char public_key[BUS_CURVE_KEY_LEN + 1]);

/* True when text is a well-formed Z85 key. */
int bus_curve_key_valid(const char *text);

/*
 * Read a key file: JSON {"public": KEY, "secret": KEY} (secret required;
 * public, when present, must match). Returns 0 or a negative error with
 * err set.
 */
int bus_curve_read_keyfile(const char *path,
                           char public_key[BUS_CURVE_KEY_LEN + 1],
                           char secret_key[BUS_CURVE_KEY_LEN + 1],
                           ls_error *err);

/*
 * Write a new key pair to path (mode 0600, refuses to overwrite) in the
 * format above; public_key receives the public key. Returns 0 or a
 * negative error with err set.
 */
int bus_curve_write_keyfile(const char *path,
                            char public_key[BUS_CURVE_KEY_LEN + 1],
                            ls_error *err);

/*
 * A public key given as text: the key itself (40 Z85 characters), or the
 * path of a file holding it - a public-key file (the key on its first line
 * that is not blank or a '#' comment) or a key file ({"public": ...}).
 * Returns 0 with public_key set, or a negative error with err set.
 */
int bus_curve_read_public(const char *spec,
                          char public_key[BUS_CURVE_KEY_LEN + 1],
                          ls_error *err);

/*
 * `lightstream keygen --out PREFIX`: a new key pair in PREFIX.key (the key
 * file above, mode 0600) and PREFIX.pub (the public key and a newline,
 * mode 0644); neither may exist. public_key receives the public key.
 * Returns 0 or a negative error with err set (nothing is left behind).
 */
int bus_curve_write_pair(const char *prefix,
                         char public_key[BUS_CURVE_KEY_LEN + 1],
                         ls_error *err);

/*
 * Read an allow-list: one public key per line; blank lines and lines
 * starting with '#' are ignored. On success *keys is a new array of *n new
 * strings: free with bus_curve_free_keys(). Returns 0 or a negative error
 * with err set (naming the line).
 */
int bus_curve_read_allow(const char *path, char ***keys, size_t *n,
                         ls_error *err);

void bus_curve_free_keys(char **keys, size_t n);

#endif
