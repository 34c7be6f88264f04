#include "gw_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "gw_embed.h"
#include "ls_crypto.h"

static const struct {
	const char *path, *ctype;
} gw__client_names[] = {
	{ "/lightstream.js", "application/javascript; charset=utf-8" },
	{ "/lightstream.min.js", "application/javascript; charset=utf-8" },
	{ "/lightstream.mjs", "application/javascript; charset=utf-8" },
	{ "/lightstream.d.ts", "application/typescript; charset=utf-8" },
};
#define GW__NCLIENT    (sizeof(gw__client_names) / sizeof(gw__client_names[0]))
#define GW__CLIENT_MAX (4 * 1024 * 1024) /* larger: not a client file */

struct gw_client_files {
	gw_client_file files[GW__NCLIENT];
};

/* gzip (RFC 1952) of in; NULL when not smaller or on failure. */
static char *
gw__gzip(const char *in, size_t len, size_t *outlen)
{
	z_stream z;
	uLong cap = compressBound((uLong)len) + 32;
	char *out = malloc(cap);

	if (out == NULL) {
		return NULL;
	}
	memset(&z, 0, sizeof(z));
	/* 15 + 16: the gzip wrapper rather than zlib's */
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9,
	                 Z_DEFAULT_STRATEGY) != Z_OK) {
		free(out);
		return NULL;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END || z.total_out >= len) {
		deflateEnd(&z);
		free(out);
		return NULL;
	}
	*outlen = z.total_out;
	deflateEnd(&z);
	return out;
}

static int
gw__load_one(gw_client_file *f, const char *dir)
{
	char path[4096];
	struct stat st;
	char digest[LS_SHA256_HEX_LEN + 1];
	FILE *fp;

	if (snprintf(path, sizeof(path), "%s%s", dir, f->path) >=
	            (int)sizeof(path) ||
	    stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > GW__CLIENT_MAX) {
		return -1;
	}
	fp = fopen(path, "rb");
	if (fp == NULL) {
		return -1;
	}
	f->body = malloc((size_t)st.st_size + 1);
	if (f->body == NULL ||
	    fread(f->body, 1, (size_t)st.st_size, fp) != (size_t)st.st_size) {
		fclose(fp);
		free(f->body);
		f->body = NULL;
		return -1;
	}
	fclose(fp);
	f->len = (size_t)st.st_size;
	f->mtime = st.st_mtime;
	/* The ETag names the content: the same file on every gateway of a
	 * cluster has the same tag, whatever its modification time. */
	ls_sha256_hex(f->body, f->len, digest);
	snprintf(f->etag, sizeof(f->etag), "\"%.16s\"", digest);
	{
		struct tm tm;
		gmtime_r(&f->mtime, &tm);
		strftime(f->last_modified, sizeof(f->last_modified),
		         "%a, %d %b %Y %H:%M:%S GMT", &tm);
	}
	f->gz = gw__gzip(f->body, f->len, &f->gzlen);
	return 0;
}

/* The copy compiled into the binary (gw_embed.h). */
static int
gw__load_embedded(gw_client_file *f)
{
	char digest[LS_SHA256_HEX_LEN + 1];

	for (const gw_embedded_file *e = gw_embedded_files; e->name != NULL;
	     e++) {
		if (strcmp(e->name, f->path + 1) != 0) {
			continue;
		}
		f->body = malloc(e->len + 1);
		if (f->body == NULL) {
			return -1;
		}
		memcpy(f->body, e->data, e->len);
		f->len = e->len;
		f->mtime = (time_t)e->mtime;
		ls_sha256_hex(f->body, f->len, digest);
		snprintf(f->etag, sizeof(f->etag), "\"%.16s\"", digest);
		{
			struct tm tm;
			gmtime_r(&f->mtime, &tm);
			strftime(f->last_modified, sizeof(f->last_modified),
			         "%a, %d %b %Y %H:%M:%S GMT", &tm);
		}
		f->gz = gw__gzip(f->body, f->len, &f->gzlen);
		return 0;
	}
	return -1;
}

gw_client_files *
gw_client_files_load(const char *dir)
{
	gw_client_files *cf = calloc(1, sizeof(*cf));

	if (cf == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < GW__NCLIENT; i++) {
		cf->files[i].path = gw__client_names[i].path;
		cf->files[i].ctype = gw__client_names[i].ctype;
		if (dir == NULL || gw__load_one(&cf->files[i], dir) != 0) {
			gw__load_embedded(&cf->files[i]);
		}
	}
	return cf;
}

void
gw_client_files_free(gw_client_files **pcf)
{
	gw_client_files *cf = pcf ? *pcf : NULL;

	if (cf == NULL) {
		return;
	}
	for (size_t i = 0; i < GW__NCLIENT; i++) {
		free(cf->files[i].body);
		free(cf->files[i].gz);
	}
	free(cf);
	*pcf = NULL;
}

const gw_client_file *
gw_client_files_find(const gw_client_files *cf, const char *path)
{
	if (cf == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < GW__NCLIENT; i++) {
		if (cf->files[i].body != NULL &&
		    strcmp(cf->files[i].path, path) == 0) {
			return &cf->files[i];
		}
	}
	return NULL;
}

bool
gw_client_file_fresh(const gw_client_file *f, const char *if_none_match,
                     const char *if_modified_since)
{
	/* If-None-Match wins when present (RFC 9110 13.1.3). */
	if (if_none_match[0] != '\0') {
		return strstr(if_none_match, f->etag) != NULL ||
		       strcmp(if_none_match, "*") == 0;
	}
	if (if_modified_since[0] != '\0') {
		struct tm tm;
		memset(&tm, 0, sizeof(tm));
		if (strptime(if_modified_since, "%a, %d %b %Y %H:%M:%S GMT",
		             &tm) != NULL) {
			return timegm(&tm) >= f->mtime;
		}
	}
	return false;
}
