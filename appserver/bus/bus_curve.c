#include "bus_curve.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bus_proto.h"

#define BUS__ALLOW_MAX 10000 /* keys in an allow-list */

int
bus_curve_keypair(char public_key[BUS_CURVE_KEY_LEN + 1],
                  char secret_key[BUS_CURVE_KEY_LEN + 1])
{
	if (!zmq_has("curve")) {
		return -ENOTSUP;
	}
	return zmq_curve_keypair(public_key, secret_key) == 0 ? 0 : -errno;
}

int
bus_curve_key_valid(const char *text)
{
	uint8_t raw[32];

	return text != NULL && strlen(text) == BUS_CURVE_KEY_LEN &&
	       zmq_z85_decode(raw, text) != NULL;
}

int
bus_curve_public(const char *secret_key,
                 char public_key[BUS_CURVE_KEY_LEN + 1])
{
	if (!bus_curve_key_valid(secret_key) ||
	    zmq_curve_public(public_key, secret_key) != 0) {
		return -EINVAL;
	}
	return 0;
}

int
bus_curve_read_keyfile(const char *path,
                       char public_key[BUS_CURVE_KEY_LEN + 1],
                       char secret_key[BUS_CURVE_KEY_LEN + 1], ls_error *err)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, 0, &jerr);
	const char *pub, *sec;
	int rc = LS_ECONFIG;

	if (root == NULL) {
		return ls_error_set(err, LS_ECONFIG, "%s: %s", path,
		                    jerr.text);
	}
	pub = json_string_value(json_object_get(root, "public"));
	sec = json_string_value(json_object_get(root, "secret"));
	if (!bus_curve_key_valid(sec)) {
		ls_error_set(err, rc,
		             "%s: \"secret\" must be a Z85 key of %d "
		             "characters",
		             path, BUS_CURVE_KEY_LEN);
		goto out;
	}
	if (bus_curve_public(sec, public_key) != 0) {
		ls_error_set(err, rc, "%s: unusable secret key", path);
		goto out;
	}
	if (pub != NULL && strcmp(pub, public_key) != 0) {
		ls_error_set(err, rc,
		             "%s: \"public\" does not belong to \"secret\"",
		             path);
		goto out;
	}
	memcpy(secret_key, sec, BUS_CURVE_KEY_LEN + 1);
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int
bus_curve_write_keyfile(const char *path,
                        char public_key[BUS_CURVE_KEY_LEN + 1], ls_error *err)
{
	char secret[BUS_CURVE_KEY_LEN + 1];
	char *text = NULL;
	int fd = -1, rc;

	rc = bus_curve_keypair(public_key, secret);
	if (rc != 0) {
		return ls_error_set(err, rc,
		                    "this libzmq has no CURVE support");
	}
	if (asprintf(&text, "{\"public\": \"%s\", \"secret\": \"%s\"}\n",
	             public_key, secret) < 0) {
		return ls_error_set(err, -ENOMEM, "out of memory");
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = ls_error_set(err, -errno, "%s: %s", path,
		                  strerror(errno));
		goto out;
	}
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
	    fsync(fd) != 0) {
		rc = ls_error_set(err, -EIO, "%s: write failed", path);
		unlink(path);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0) {
		close(fd);
	}
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(text, strlen(text));
	free(text);
	return rc;
}

int
bus_curve_read_public(const char *spec, char public_key[BUS_CURVE_KEY_LEN + 1],
                      ls_error *err)
{
	FILE *f;
	char line[512];
	int rc = LS_ECONFIG;

	if (spec == NULL || spec[0] == '\0') {
		return ls_error_set(err, LS_ECONFIG, "no public key given");
	}
	if (bus_curve_key_valid(spec)) {
		memcpy(public_key, spec, BUS_CURVE_KEY_LEN + 1);
		return 0;
	}
	f = fopen(spec, "re");
	if (f == NULL) {
		return ls_error_set(err, LS_ECONFIG,
		                    "%s: neither a Z85 public key nor a "
		                    "readable key file: %s",
		                    spec, strerror(errno));
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = line, *end;
		while (*p == ' ' || *p == '\t') {
			p++;
		}
		end = p + strlen(p);
		while (end > p && (end[-1] == '\n' || end[-1] == '\r' ||
		                   end[-1] == ' ' || end[-1] == '\t')) {
			*--end = '\0';
		}
		if (*p == '\0' || *p == '#') {
			continue;
		}
		/* A Z85 key may itself start with '{': test for a key
		 * first (a key file is longer than a key). */
		if (!bus_curve_key_valid(p) && *p == '{') {
			/* A key file: take its "public" (or derive it). */
			char sec[BUS_CURVE_KEY_LEN + 1];
			fclose(f);
			rc = bus_curve_read_keyfile(spec, public_key, sec,
			                            err);
			explicit_bzero(sec, sizeof(sec));
			explicit_bzero(line, sizeof(line));
			return rc;
		}
		if (bus_curve_key_valid(p)) {
			memcpy(public_key, p, BUS_CURVE_KEY_LEN + 1);
			rc = 0;
		} else {
			ls_error_set(err, LS_ECONFIG,
			             "%s: not a Z85 public key", spec);
		}
		fclose(f);
		return rc;
	}
	fclose(f);
	return ls_error_set(err, LS_ECONFIG, "%s: no public key in the file",
	                    spec);
}

int
bus_curve_write_pair(const char *prefix,
                     char public_key[BUS_CURVE_KEY_LEN + 1], ls_error *err)
{
	char *key_path = NULL, *pub_path = NULL;
	int fd = -1, rc;

	if (asprintf(&key_path, "%s.key", prefix) < 0) {
		key_path = NULL;
	}
	if (asprintf(&pub_path, "%s.pub", prefix) < 0) {
		pub_path = NULL;
	}
	if (key_path == NULL || pub_path == NULL) {
		rc = ls_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	/* The public file first: refusing to overwrite it leaves nothing. */
	fd = open(pub_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = ls_error_set(err, -errno, "%s: %s", pub_path,
		                  strerror(errno));
		goto out;
	}
	rc = bus_curve_write_keyfile(key_path, public_key, err);
	if (rc != 0) {
		close(fd);
		unlink(pub_path);
		goto out;
	}
	if (dprintf(fd, "%s\n", public_key) != BUS_CURVE_KEY_LEN + 1 ||
	    fsync(fd) != 0) {
		rc = ls_error_set(err, -EIO, "%s: write failed", pub_path);
		close(fd);
		unlink(pub_path);
		unlink(key_path);
		goto out;
	}
	close(fd);
	rc = 0;
out:
	free(key_path);
	free(pub_path);
	return rc;
}

int
bus_curve_read_allow(const char *path, char ***keys, size_t *n, ls_error *err)
{
	FILE *f = fopen(path, "re");
	char line[256];
	char **out = NULL;
	size_t count = 0;
	int lineno = 0, rc = 0;

	if (f == NULL) {
		return ls_error_set(err, -errno, "%s: %s", path,
		                    strerror(errno));
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = line, *end;
		lineno++;
		while (*p == ' ' || *p == '\t') {
			p++;
		}
		end = p + strlen(p);
		while (end > p && (end[-1] == '\n' || end[-1] == '\r' ||
		                   end[-1] == ' ' || end[-1] == '\t')) {
			*--end = '\0';
		}
		if (*p == '\0' || *p == '#') {
			continue;
		}
		if (!bus_curve_key_valid(p)) {
			rc = ls_error_set(err, LS_ECONFIG,
			                  "%s:%d: not a Z85 public key", path,
			                  lineno);
			goto fail;
		}
		if (count >= BUS__ALLOW_MAX) {
			rc = ls_error_set(err, LS_ECONFIG,
			                  "%s: more than %d keys", path,
			                  BUS__ALLOW_MAX);
			goto fail;
		}
		{
			char **grown =
			        realloc(out, (count + 1) * sizeof(*out));
			if (grown == NULL) {
				rc = ls_error_set(err, -ENOMEM,
				                  "out of memory");
				goto fail;
			}
			out = grown;
			out[count] = strdup(p);
			if (out[count] == NULL) {
				rc = ls_error_set(err, -ENOMEM,
				                  "out of memory");
				goto fail;
			}
			count++;
		}
	}
	fclose(f);
	*keys = out;
	*n = count;
	return 0;
fail:
	fclose(f);
	bus_curve_free_keys(out, count);
	return rc;
}

void
bus_curve_free_keys(char **keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(keys[i]);
	}
	free(keys);
}

int
bus__curve_client(void *sock, const bus_curve_keys *k)
{
	if (k == NULL) {
		return 0;
	}
	if (!bus_curve_key_valid(k->server_public) ||
	    !bus_curve_key_valid(k->public_key) ||
	    !bus_curve_key_valid(k->secret_key)) {
		return -EINVAL;
	}
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, k->server_public,
	                   BUS_CURVE_KEY_LEN + 1) != 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, k->public_key,
	                   BUS_CURVE_KEY_LEN + 1) != 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, k->secret_key,
	                   BUS_CURVE_KEY_LEN + 1) != 0) {
		return -errno;
	}
	return 0;
}
