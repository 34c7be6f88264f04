/*
 * `lightstream admin`: accounts, roles and tokens through the service bus
 * (the accounts, db and auth services of a running app server).
 * Input is checked here first so that mistakes are usage errors (exit 2)
 * without a round trip; refusals by the app server exit 1.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "as_store.h"
#include "bus_client.h"
#include "cmd.h"
#include "cmd_bus.h"
#include "cmd_util.h"
#include "ls_log.h"
#include "ls_settings.h"

enum {
	OPT_PRIVATE_KEY = 0x2000,
	OPT_SECRET_KEY,
	OPT_PUBLIC,
	OPT_NO_PUBLIC,
	OPT_SHARED_WRITE,
	OPT_NO_SHARED_WRITE,
	OPT_SHOW_SECRET,
	OPT_ROLES,
	OPT_TTL,
	OPT_IP,
	OPT_WEB,
	OPT_TIMEOUT,
	OPT_HELP,
};

/* What the command line said, before dispatch. */
typedef struct admin_args {
	const char *private_key;
	const char *secret_key;
	int is_public;    /* -1 unset, 0, 1 */
	int shared_write; /* -1 unset, 0, 1 */
	bool show_secret;
	const char *roles;
	const char *ttl;
	const char *ip;
	bool web;
	long timeout_ms;
	unsigned seen; /* bit per OPT_* - OPT_PRIVATE_KEY */
	char private_key_buf[AS_KEY_MAX + 2];
} admin_args;

#define SEEN(opt) (1u << ((opt)-OPT_PRIVATE_KEY))

static void
admin_usage(FILE *out)
{
	fprintf(out,
	        "Usage: lightstream admin [OPTIONS] COMMAND ...\n"
	        "\n"
	        "Manage accounts, roles and tokens through the service bus "
	        "(a running\n"
	        "`lightstream appserver` behind --broker-frontend, with an "
	        "admin key;\n"
	        "or a running `lightstream serve --data DIR`: give the same "
	        "--data DIR).\n"
	        "\n"
	        "Commands:\n"
	        "  account add APPKEY --private-key K --secret-key S "
	        "[--public] [--shared-write]\n"
	        "  account update APPKEY [--private-key K] [--secret-key S]\n"
	        "                 [--public|--no-public] "
	        "[--shared-write|--no-shared-write]\n"
	        "  account list\n"
	        "  account show APPKEY [--show-secret]\n"
	        "  account delete APPKEY\n"
	        "  role set APPKEY ROLE PERMS_JSON\n"
	        "      PERMS_JSON: [{\"owner\": \"acc1\", \"stream\": \"s1\", "
	        "\"permission\": 3}]\n"
	        "      (1 = write, 2 = read, 3 = both; stream may end in *)\n"
	        "  role delete APPKEY ROLE\n"
	        "  import FILE        replace ALL accounts and tokens with "
	        "FILE's\n"
	        "  token issue APPKEY --private-key K --roles r1,r2 [--ttl S] "
	        "[--ip ADDR] [--web]\n"
	        "  token revoke APPKEY --private-key K TOKEN\n"
	        "\n"
	        "A private key given as '-' is read from the first line of "
	        "standard input\n"
	        "(keeps it out of the process list). Results are printed as "
	        "JSON.\n"
	        "Exit status: 0 done, 1 refused or bus unreachable, 2 usage "
	        "or invalid input.\n"
	        "\n"
	        "Options:\n"
	        "%s"
	        "  -t, --timeout MS         bus deadline (5000; "
	        "bus.timeout_ms)\n"
	        "  -h, --help               this help\n",
	        ls_settings_help_for(LS_OPTS_DATA | LS_OPTS_FRONTEND |
	                             LS_OPTS_BUS_PEER));
}

static int
admin_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "lightstream admin: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see `lightstream admin --help`)\n");
	return CMD_EXIT_USAGE;
}

/* Send service.op(args) (args taken) and print the result. */
static int
admin_call(const ls_settings *s, const admin_args *a, const char *service,
           const char *op, json_t *args)
{
	json_t *body = json_pack("{s:s, s:o}", "o", op, "a", args);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	bus_status status = BUS_ERROR;
	char *reply = NULL;
	size_t len = 0;
	void *ctx = NULL;
	cmd_bus bus = { 0 };
	const char *ep;
	int rc, exit_status = CMD_EXIT_FAILURE;

	json_decref(body);
	rc = cmd_bus_client("admin", s, &bus);
	if (rc != 0) {
		exit_status = rc;
		goto out;
	}
	ep = bus.endpoint;
	ctx = zmq_ctx_new();
	if (text == NULL || ctx == NULL) {
		fprintf(stderr, "lightstream admin: out of memory\n");
		goto out;
	}
	rc = bus_call_secure(ctx, ep, cmd_bus_keys(&bus), service, text,
	                     strlen(text), (int)a->timeout_ms, &status, &reply,
	                     &len);
	if (rc != 0) {
		fprintf(stderr,
		        "lightstream admin: cannot reach the broker at "
		        "%s: %s\n",
		        ep, ls_strerror(rc));
		goto out;
	}
	switch (status) {
	case BUS_OK: {
		json_t *v = json_loadb(reply, len, JSON_DECODE_ANY, NULL);
		char *pretty =
		        v ? json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY)
		          : NULL;
		printf("%s\n", pretty ? pretty : reply);
		free(pretty);
		json_decref(v);
		exit_status = CMD_EXIT_OK;
		break;
	}
	case BUS_ERROR: {
		char msg[LS_ERROR_TEXT_MAX];
		ls_proto_code pc =
		        bus_reply_error(status, reply, len, msg, sizeof(msg));
		fprintf(stderr, "lightstream admin: %s.%s: %s: %s\n", service,
		        op, ls_proto_code_name(pc), msg);
		break;
	}
	case BUS_TIMEOUT:
		fprintf(stderr,
		        "lightstream admin: %s.%s: no answer within %ld ms "
		        "(is an app server connected to the broker at %s?)\n",
		        service, op, a->timeout_ms, ep);
		break;
	case BUS_NOSERVICE:
	default:
		fprintf(stderr,
		        "lightstream admin: no app server serves '%s' on the "
		        "broker at %s\n",
		        service, ep);
		break;
	}
out:
	free(reply);
	free(text);
	if (ctx != NULL) {
		zmq_ctx_term(ctx);
	}
	cmd_bus_clear(&bus);
	return exit_status;
}

/* Check that only the options in allowed were given. */
static int
admin_only(const admin_args *a, unsigned allowed, const char *what)
{
	if (a->seen & ~allowed) {
		return admin_usage_error("option not valid for '%s'", what);
	}
	return 0;
}

static int
admin_private_key(admin_args *a)
{
	if (a->private_key == NULL) {
		return admin_usage_error("%s is required", "--private-key");
	}
	if (strcmp(a->private_key, "-") == 0) {
		size_t n;
		if (fgets(a->private_key_buf, sizeof(a->private_key_buf),
		          stdin) == NULL) {
			return admin_usage_error(
			        "%s: nothing on standard input",
			        "--private-key -");
		}
		n = strcspn(a->private_key_buf, "\r\n");
		a->private_key_buf[n] = '\0';
		a->private_key = a->private_key_buf;
	}
	if (*a->private_key == '\0' || strlen(a->private_key) > AS_KEY_MAX) {
		return admin_usage_error("%s: expected 1 to 256 bytes",
		                         "--private-key");
	}
	return 0;
}

static int
admin_app_key(const char *key)
{
	if (!ls_valid_app_key(key)) {
		return admin_usage_error("invalid APPKEY '%.80s' (expected "
		                         "[A-Za-z0-9_-]{1,64})",
		                         key ? key : "");
	}
	return 0;
}

static int
admin_account(const ls_settings *s, admin_args *a, int n, char **pos)
{
	const char *sub = n > 0 ? pos[0] : "";
	json_t *obj;
	int rc;

	if (strcmp(sub, "list") == 0) {
		if (n != 1) {
			return admin_usage_error("%s takes no argument",
			                         "account list");
		}
		if ((rc = admin_only(a, 0, "account list")) != 0) {
			return rc;
		}
		return admin_call(s, a, "accounts", "list", json_array());
	}
	if (n != 2) {
		return admin_usage_error(
		        "expected: account add|update|show|delete APPKEY%s",
		        "");
	}
	if ((rc = admin_app_key(pos[1])) != 0) {
		return rc;
	}
	if (strcmp(sub, "show") == 0) {
		if ((rc = admin_only(a, SEEN(OPT_SHOW_SECRET),
		                     "account show"))) {
			return rc;
		}
		return admin_call(s, a, "accounts", "get",
		                  json_pack("[s,b]", pos[1], a->show_secret));
	}
	if (strcmp(sub, "delete") == 0) {
		if ((rc = admin_only(a, 0, "account delete")) != 0) {
			return rc;
		}
		return admin_call(s, a, "accounts", "delete",
		                  json_pack("[s]", pos[1]));
	}
	if (strcmp(sub, "add") != 0 && strcmp(sub, "update") != 0) {
		return admin_usage_error("unknown command 'account %.40s'",
		                         sub);
	}
	rc = admin_only(a,
	                SEEN(OPT_PRIVATE_KEY) | SEEN(OPT_SECRET_KEY) |
	                        SEEN(OPT_PUBLIC) | SEEN(OPT_NO_PUBLIC) |
	                        SEEN(OPT_SHARED_WRITE) |
	                        SEEN(OPT_NO_SHARED_WRITE),
	                sub);
	if (rc != 0) {
		return rc;
	}
	if (strcmp(sub, "add") == 0 &&
	    (a->private_key == NULL || a->secret_key == NULL)) {
		return admin_usage_error("%s",
		                         "account add needs --private-key and "
		                         "--secret-key");
	}
	if (a->private_key && (rc = admin_private_key(a)) != 0) {
		return rc;
	}
	if (a->secret_key &&
	    (*a->secret_key == '\0' || strlen(a->secret_key) > AS_KEY_MAX)) {
		return admin_usage_error("%s: expected 1 to 256 bytes",
		                         "--secret-key");
	}
	obj = json_object();
	if (strcmp(sub, "add") == 0) {
		json_object_set_new(obj, "appKey", json_string(pos[1]));
	}
	if (a->private_key) {
		json_object_set_new(obj, "privateKey",
		                    json_string(a->private_key));
	}
	if (a->secret_key) {
		json_object_set_new(obj, "secretKey",
		                    json_string(a->secret_key));
	}
	if (a->is_public >= 0) {
		json_object_set_new(obj, "isPublic",
		                    json_boolean(a->is_public));
	}
	if (a->shared_write >= 0) {
		json_object_set_new(obj, "sharedWrite",
		                    json_boolean(a->shared_write));
	}
	if (strcmp(sub, "add") == 0) {
		return admin_call(s, a, "accounts", "create",
		                  json_pack("[o]", obj));
	}
	if (json_object_size(obj) == 0) {
		json_decref(obj);
		return admin_usage_error("%s", "account update: nothing to "
		                               "change");
	}
	return admin_call(s, a, "accounts", "update",
	                  json_pack("[s,o]", pos[1], obj));
}

static int
admin_role(const ls_settings *s, admin_args *a, int n, char **pos)
{
	const char *sub = n > 0 ? pos[0] : "";
	json_error_t jerr;
	ls_error err;
	json_t *perms;
	int rc;

	if ((rc = admin_only(a, 0, "role")) != 0) {
		return rc;
	}
	if (strcmp(sub, "set") == 0 && n == 4) {
		/* checked below */
	} else if (strcmp(sub, "delete") == 0 && n == 3) {
		if ((rc = admin_app_key(pos[1])) != 0) {
			return rc;
		}
		if (!ls_valid_role_name(pos[2])) {
			return admin_usage_error(
			        "invalid ROLE '%.80s' (expected "
			        "[A-Za-z0-9_-]{1,64})",
			        pos[2]);
		}
		return admin_call(s, a, "accounts", "deleteRole",
		                  json_pack("[s,s]", pos[1], pos[2]));
	} else {
		return admin_usage_error(
		        "%s", "expected: role set APPKEY ROLE "
		              "PERMS_JSON | role delete APPKEY ROLE");
	}
	if ((rc = admin_app_key(pos[1])) != 0) {
		return rc;
	}
	if (!ls_valid_role_name(pos[2])) {
		return admin_usage_error(
		        "invalid ROLE '%.80s' (expected [A-Za-z0-9_-]{1,64})",
		        pos[2]);
	}
	perms = json_loads(pos[3], 0, &jerr);
	if (perms == NULL) {
		return admin_usage_error("PERMS_JSON is not JSON: %s",
		                         jerr.text);
	}
	if (as_perms_validate(perms, &err) != 0) {
		json_decref(perms);
		return admin_usage_error("PERMS_JSON: %s", err.text);
	}
	return admin_call(s, a, "accounts", "setRole",
	                  json_pack("[s,s,o]", pos[1], pos[2], perms));
}

static int
admin_import(const ls_settings *s, admin_args *a, int n, char **pos)
{
	json_t *fixture = NULL;
	as_account *accounts = NULL;
	size_t count = 0;
	ls_error err;
	int rc;

	if ((rc = admin_only(a, 0, "import")) != 0) {
		return rc;
	}
	if (n != 1) {
		return admin_usage_error("%s", "expected: import FILE");
	}
	if (ls_json_file_load(pos[0], "the fixture", &fixture, &err) != 0) {
		fprintf(stderr, "lightstream admin: %s\n", err.text);
		return CMD_EXIT_USAGE;
	}
	/* Validate everything here; the app server checks it again. */
	if (as_fixture_parse(fixture, &accounts, &count, &err) != 0) {
		fprintf(stderr, "lightstream admin: %s: %s\n", pos[0],
		        err.text);
		json_decref(fixture);
		return CMD_EXIT_USAGE;
	}
	as_accounts_free(accounts, count);
	return admin_call(s, a, "db", "resetDatabase",
	                  json_pack("[o]", fixture));
}

static int
admin_token(const ls_settings *s, admin_args *a, int n, char **pos)
{
	const char *sub = n > 0 ? pos[0] : "";
	char ip[AS_IP_MAX];
	json_t *roles, *args;
	long ttl = LS_TTL_DEFAULT;
	int rc;

	if (strcmp(sub, "revoke") == 0) {
		if (n != 3) {
			return admin_usage_error(
			        "%s", "expected: token revoke APPKEY "
			              "--private-key K TOKEN");
		}
		if ((rc = admin_only(a, SEEN(OPT_PRIVATE_KEY),
		                     "token revoke")) != 0 ||
		    (rc = admin_app_key(pos[1])) != 0 ||
		    (rc = admin_private_key(a)) != 0) {
			return rc;
		}
		return admin_call(
		        s, a, "auth", "revokeToken",
		        json_pack("[s,s,s]", pos[1], a->private_key, pos[2]));
	}
	if (strcmp(sub, "issue") != 0 || n != 2) {
		return admin_usage_error(
		        "%s", "expected: token issue APPKEY --private-key K "
		              "--roles r1,r2 | token revoke APPKEY "
		              "--private-key K TOKEN");
	}
	rc = admin_only(a,
	                SEEN(OPT_PRIVATE_KEY) | SEEN(OPT_ROLES) |
	                        SEEN(OPT_TTL) | SEEN(OPT_IP) | SEEN(OPT_WEB),
	                "token issue");
	if (rc != 0 || (rc = admin_app_key(pos[1])) != 0 ||
	    (rc = admin_private_key(a)) != 0) {
		return rc;
	}
	if (a->roles == NULL || *a->roles == '\0') {
		return admin_usage_error("%s is required", "--roles");
	}
	if (a->ttl != NULL) {
		if (cmd_parse_long(a->ttl, LS_TTL_MIN, LS_TTL_MAX, &ttl) !=
		    0) {
			/* The bounds are LS_TTL_MIN and LS_TTL_MAX. */
			return admin_usage_error("--ttl: expected 1 to 86400 "
			                         "seconds, not '%.40s'",
			                         a->ttl);
		}
	}
	if (a->ip != NULL && as_ip_normalize(a->ip, ip) != 0) {
		return admin_usage_error(
		        "--ip: '%.64s' is not an IPv4 or IPv6 address", a->ip);
	}
	roles = json_array();
	{
		char *copy = strdup(a->roles), *save = NULL, *tok;
		for (tok = strtok_r(copy, ",|", &save); tok;
		     tok = strtok_r(NULL, ",|", &save)) {
			if (!ls_valid_role_name(tok)) {
				json_decref(roles);
				rc = admin_usage_error("--roles: invalid role "
				                       "name '%.80s'",
				                       tok);
				free(copy);
				return rc;
			}
			json_array_append_new(roles, json_string(tok));
		}
		free(copy);
	}
	args = json_pack("[s,s,o,i,s?,b]", pos[1], a->private_key, roles,
	                 (int)ttl, a->ip, a->web);
	return admin_call(s, a, "auth", "generateToken", args);
}

int
cmd_admin(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "private-key", required_argument, NULL, OPT_PRIVATE_KEY },
		{ "secret-key", required_argument, NULL, OPT_SECRET_KEY },
		{ "public", no_argument, NULL, OPT_PUBLIC },
		{ "no-public", no_argument, NULL, OPT_NO_PUBLIC },
		{ "shared-write", no_argument, NULL, OPT_SHARED_WRITE },
		{ "no-shared-write", no_argument, NULL, OPT_NO_SHARED_WRITE },
		{ "show-secret", no_argument, NULL, OPT_SHOW_SECRET },
		{ "roles", required_argument, NULL, OPT_ROLES },
		{ "ttl", required_argument, NULL, OPT_TTL },
		{ "ip", required_argument, NULL, OPT_IP },
		{ "web", no_argument, NULL, OPT_WEB },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct option opts[40];
	ls_settings s;
	admin_args a = { .is_public = -1, .shared_write = -1 };
	int status = CMD_EXIT_USAGE, c, n;
	char **pos;

	if (cmd_settings_init("admin", &s) != 0) {
		return CMD_EXIT_FAILURE;
	}
	a.timeout_ms = s.bus_timeout_ms;
	ls_settings_options_merge_for(LS_OPTS_DATA | LS_OPTS_FRONTEND |
	                                      LS_OPTS_BUS_PEER,
	                              extra, opts, 40);
	optind = 1;
	while ((c = getopt_long(argc, argv, "ht:", opts, NULL)) != -1) {
		int rc = cmd_settings_option("admin", &s, c, optarg, NULL);
		if (rc == 1) {
			continue;
		}
		if (rc < 0) {
			goto out;
		}
		if (c >= OPT_PRIVATE_KEY && c < OPT_TIMEOUT) {
			a.seen |= SEEN(c);
		}
		switch (c) {
		case OPT_PRIVATE_KEY:
			a.private_key = optarg;
			break;
		case OPT_SECRET_KEY:
			a.secret_key = optarg;
			break;
		case OPT_PUBLIC:
		case OPT_NO_PUBLIC:
			a.is_public = c == OPT_PUBLIC;
			break;
		case OPT_SHARED_WRITE:
		case OPT_NO_SHARED_WRITE:
			a.shared_write = c == OPT_SHARED_WRITE;
			break;
		case OPT_SHOW_SECRET:
			a.show_secret = true;
			break;
		case OPT_ROLES:
			a.roles = optarg;
			break;
		case OPT_TTL:
			a.ttl = optarg;
			break;
		case OPT_IP:
			a.ip = optarg;
			break;
		case OPT_WEB:
			a.web = true;
			break;
		case 't':
		case OPT_TIMEOUT:
			if (cmd_parse_long(optarg, 1, 600000, &a.timeout_ms) !=
			    0) {
				status = admin_usage_error(
				        "--timeout: expected 1 to 600000 ms, "
				        "not '%.40s'",
				        optarg);
				goto out;
			}
			break;
		case 'h':
		case OPT_HELP:
			admin_usage(stdout);
			status = CMD_EXIT_OK;
			goto out;
		default:
			admin_usage(stderr);
			goto out;
		}
	}
	if (cmd_apply_logging("admin", &s) != 0) {
		goto out;
	}
	n = argc - optind;
	pos = argv + optind;
	if (n == 0) {
		admin_usage(stderr);
		goto out;
	}
	if (strcmp(pos[0], "account") == 0) {
		status = admin_account(&s, &a, n - 1, pos + 1);
	} else if (strcmp(pos[0], "role") == 0) {
		status = admin_role(&s, &a, n - 1, pos + 1);
	} else if (strcmp(pos[0], "import") == 0) {
		status = admin_import(&s, &a, n - 1, pos + 1);
	} else if (strcmp(pos[0], "token") == 0) {
		status = admin_token(&s, &a, n - 1, pos + 1);
	} else {
		status = admin_usage_error("unknown command '%.40s'", pos[0]);
	}
out:
	explicit_bzero(a.private_key_buf, sizeof(a.private_key_buf));
	ls_settings_clear(&s);
	return status;
}
