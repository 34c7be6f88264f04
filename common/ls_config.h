/*
 * JSON configuration files (docs/configuration.md): one JSON object, every key
 * optional.
 *
 * A component describes the keys it accepts in a table of ls_config_field;
 * ls_config_apply() checks the file against the table and stores the
 * values. Errors name the offending key ("gateway.listen: expected a
 * string"), and unknown keys are errors too, so typos do not pass silently.
 * Nested objects are addressed with dots: "redis.url".
 */
#ifndef LS_CONFIG_H
#define LS_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "ls_error.h"

typedef enum ls_config_type {
	LS_CONFIG_STRING,  /* target: char ** (new string, free() it) */
	LS_CONFIG_INT,     /* target: long *, checked against [min, max] */
	LS_CONFIG_BOOL,    /* target: bool * */
	LS_CONFIG_STRLIST, /* target: ls_strlist * */
	LS_CONFIG_JSON,    /* target: json_t ** (new reference) */
} ls_config_type;

/* A list of strings, owned by whoever holds it (ls_strlist_clear()). */
typedef struct ls_strlist {
	char **items;
	size_t count;
} ls_strlist;

void ls_strlist_clear(ls_strlist *list);

/* Append a copy of s. Returns 0 or -ENOMEM. */
int ls_strlist_add(ls_strlist *list, const char *s);

typedef struct ls_config_field {
	const char *key; /* dotted path, e.g. "redis.url" */
	ls_config_type type;
	void *target;
	long min, max; /* LS_CONFIG_INT only; min == max == 0: unbounded */
} ls_config_field;

/*
 * Load a JSON object from path into *root (new reference). what names the
 * file in errors ("the fixture"). Returns 0, or LS_ECONFIG with err naming
 * the file and why: unreadable (with the system's reason), not JSON (line
 * and column), or not an object.
 */
int ls_json_file_load(const char *path, const char *what, json_t **root,
                      ls_error *err);

/* ls_json_file_load of a configuration file. */
int ls_config_load_file(const char *path, json_t **root, ls_error *err);

/*
 * Check root (borrowed; NULL is an empty config) against fields and store
 * each present value into its target. Unknown keys and wrong types are
 * LS_ECONFIG errors naming the key. Targets of absent keys are untouched,
 * so callers set defaults first. Previous LS_CONFIG_STRING targets are
 * freed before being replaced.
 */
int ls_config_apply(json_t *root, const ls_config_field *fields,
                    size_t nfields, ls_error *err);

/*
 * Parse "HOST:PORT" ("[v6]:PORT" too). host receives at most hostlen-1
 * bytes. Returns 0 or -EINVAL.
 */
int ls_parse_host_port(const char *text, char *host, size_t hostlen,
                       int *port);

#endif
