#include "ls_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest dotted key path accepted in a configuration file. */
#define LS__CONFIG_PATH_MAX 256

void
ls_strlist_clear(ls_strlist *list)
{
	for (size_t i = 0; i < list->count; i++) {
		free(list->items[i]);
	}
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

int
ls_strlist_add(ls_strlist *list, const char *s)
{
	char *copy = strdup(s);
	char **items;

	if (copy == NULL) {
		return -ENOMEM;
	}
	items = realloc(list->items, (list->count + 1) * sizeof(*items));
	if (items == NULL) {
		free(copy);
		return -ENOMEM;
	}
	items[list->count++] = copy;
	list->items = items;
	return 0;
}

int
ls_json_file_load(const char *path, const char *what, json_t **root,
                  ls_error *err)
{
	json_error_t jerr;
	json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);

	if (doc == NULL) {
		/* jansson reports an unreadable file at line -1. */
		if (jerr.line < 0) {
			return ls_error_set(err, LS_ECONFIG,
			                    "%s: cannot read %s: %s", path,
			                    what, strerror(errno));
		}
		return ls_error_set(err, LS_ECONFIG,
		                    "%s:%d:%d: not valid JSON: %s", path,
		                    jerr.line, jerr.column, jerr.text);
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		return ls_error_set(err, LS_ECONFIG,
		                    "%s: %s must be a JSON object", path,
		                    what);
	}
	*root = doc;
	return 0;
}

int
ls_config_load_file(const char *path, json_t **root, ls_error *err)
{
	return ls_json_file_load(path, "the configuration file", root, err);
}

/* Edit distance of a and b, capped at 9 (enough to rank suggestions). */
static size_t
ls__distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[LS__CONFIG_PATH_MAX + 1];

	if (la > LS__CONFIG_PATH_MAX || lb > LS__CONFIG_PATH_MAX) {
		return 9;
	}
	for (size_t j = 0; j <= lb; j++) {
		row[j] = j;
	}
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best) {
				best = up + 1;
			}
			if (row[j - 1] + 1 < best) {
				best = row[j - 1] + 1;
			}
			row[j] = best;
			diag = up;
		}
	}
	return row[lb] < 9 ? row[lb] : 9;
}

/*
 * The known key closest to path (a whole key, or an object on the way to
 * one), when it is close enough to be a likely typo; NULL otherwise.
 */
static const char *
ls__closest_key(const ls_config_field *fields, size_t n, const char *path,
                char *buf, size_t buflen)
{
	size_t best = 9, plen = strlen(path);
	const char *dot = strrchr(path, '.');
	size_t parent = dot ? (size_t)(dot - path) + 1 : 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *key = fields[i].key;
		char cand[LS__CONFIG_PATH_MAX];
		size_t d;

		/* Compare with the key cut at path's depth: "gatway" is
		 * compared with "gateway", not "gateway.listen". */
		if (parent > 0 && strncmp(key, path, parent) != 0) {
			continue;
		}
		snprintf(cand, sizeof(cand), "%s", key);
		char *end = strchr(cand + parent, '.');
		if (end != NULL) {
			*end = '\0';
		}
		d = ls__distance(path, cand);
		if (d < best && d <= (plen > 4 ? 3 : 1)) {
			best = d;
			snprintf(buf, buflen, "%s", cand);
		}
	}
	return buf[0] ? buf : NULL;
}

static const ls_config_field *
ls__find_field(const ls_config_field *fields, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(fields[i].key, path) == 0) {
			return &fields[i];
		}
	}
	return NULL;
}

/* True when some field lives below path ("path.something"). */
static int
ls__has_children(const ls_config_field *fields, size_t n, const char *path)
{
	size_t len = strlen(path);

	for (size_t i = 0; i < n; i++) {
		if (strncmp(fields[i].key, path, len) == 0 &&
		    fields[i].key[len] == '.') {
			return 1;
		}
	}
	return 0;
}

static int
ls__store(const ls_config_field *f, json_t *value, ls_error *err)
{
	switch (f->type) {
	case LS_CONFIG_STRING: {
		char **target = f->target;
		char *copy;
		if (!json_is_string(value)) {
			return ls_error_set(err, LS_ECONFIG,
			                    "%s: expected a string", f->key);
		}
		copy = strdup(json_string_value(value));
		if (copy == NULL) {
			return ls_error_set(err, -ENOMEM, "out of memory");
		}
		free(*target);
		*target = copy;
		return 0;
	}
	case LS_CONFIG_INT: {
		json_int_t v;
		if (!json_is_integer(value)) {
			return ls_error_set(err, LS_ECONFIG,
			                    "%s: expected an integer", f->key);
		}
		v = json_integer_value(value);
		if ((f->min != 0 || f->max != 0) &&
		    (v < f->min || v > f->max)) {
			return ls_error_set(
			        err, LS_ECONFIG,
			        "%s: %lld is out of range [%ld, %ld]", f->key,
			        (long long)v, f->min, f->max);
		}
		*(long *)f->target = (long)v;
		return 0;
	}
	case LS_CONFIG_BOOL:
		if (!json_is_boolean(value)) {
			return ls_error_set(err, LS_ECONFIG,
			                    "%s: expected true or false",
			                    f->key);
		}
		*(bool *)f->target = json_is_true(value);
		return 0;
	case LS_CONFIG_STRLIST: {
		ls_strlist *list = f->target;
		size_t i;
		json_t *item;
		if (!json_is_array(value)) {
			return ls_error_set(err, LS_ECONFIG,
			                    "%s: expected an array of strings",
			                    f->key);
		}
		json_array_foreach(value, i, item)
		{
			if (!json_is_string(item)) {
				return ls_error_set(
				        err, LS_ECONFIG,
				        "%s[%zu]: expected a string", f->key,
				        i);
			}
		}
		ls_strlist_clear(list);
		json_array_foreach(value, i, item)
		{
			if (ls_strlist_add(list, json_string_value(item)) !=
			    0) {
				return ls_error_set(err, -ENOMEM,
				                    "out of memory");
			}
		}
		return 0;
	}
	case LS_CONFIG_JSON: {
		json_t **target = f->target;
		json_decref(*target);
		*target = json_incref(value);
		return 0;
	}
	}
	return ls_error_set(err, LS_ECONFIG, "%s: unsupported type", f->key);
}

static int
ls__apply_object(json_t *obj, const char *prefix,
                 const ls_config_field *fields, size_t n, ls_error *err)
{
	const char *key;
	json_t *value;

	json_object_foreach(obj, key, value)
	{
		char path[LS__CONFIG_PATH_MAX];
		const ls_config_field *f;
		int rc;

		if (snprintf(path, sizeof(path), "%s%s%s", prefix,
		             *prefix ? "." : "", key) >= (int)sizeof(path)) {
			return ls_error_set(
			        err, LS_ECONFIG,
			        "configuration key too long: %.64s...", path);
		}
		/* "a.b" as one key would alias the nested key a → b. */
		if (strchr(key, '.') != NULL) {
			return ls_error_set(
			        err, LS_ECONFIG,
			        "unknown configuration key '%s' (nest objects "
			        "instead of dotted names)",
			        path);
		}
		f = ls__find_field(fields, n, path);
		if (f != NULL) {
			rc = ls__store(f, value, err);
		} else if (ls__has_children(fields, n, path)) {
			if (!json_is_object(value)) {
				return ls_error_set(err, LS_ECONFIG,
				                    "%s: expected an object",
				                    path);
			}
			rc = ls__apply_object(value, path, fields, n, err);
		} else {
			char near[LS__CONFIG_PATH_MAX];
			if (ls__closest_key(fields, n, path, near,
			                    sizeof(near)) != NULL) {
				return ls_error_set(
				        err, LS_ECONFIG,
				        "unknown configuration key '%s' (did "
				        "you mean '%s'?)",
				        path, near);
			}
			return ls_error_set(err, LS_ECONFIG,
			                    "unknown configuration key '%s'",
			                    path);
		}
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

int
ls_config_apply(json_t *root, const ls_config_field *fields, size_t nfields,
                ls_error *err)
{
	if (root == NULL) {
		return 0;
	}
	if (!json_is_object(root)) {
		return ls_error_set(err, LS_ECONFIG,
		                    "the configuration must be a JSON object");
	}
	return ls__apply_object(root, "", fields, nfields, err);
}

int
ls_parse_host_port(const char *text, char *host, size_t hostlen, int *port)
{
	const char *colon;
	const char *hbeg = text;
	size_t hlen;
	char *end;
	long p;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (close == NULL || close[1] != ':') {
			return -EINVAL;
		}
		hbeg = text + 1;
		hlen = (size_t)(close - hbeg);
		colon = close + 1;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL) {
			return -EINVAL;
		}
		hlen = (size_t)(colon - text);
	}
	if (hlen == 0 || hlen >= hostlen) {
		return -EINVAL;
	}
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || p < 0 ||
	    p > 65535) {
		return -EINVAL;
	}
	memcpy(host, hbeg, hlen);
	host[hlen] = '\0';
	*port = (int)p;
	return 0;
}
