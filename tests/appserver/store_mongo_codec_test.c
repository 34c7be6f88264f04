/*
 * The MongoDB backend's document codec and its failure paths, which need
 * no server: JSON <-> BSON of roles and token roles, account documents,
 * reply counts, invalid URIs and an unreachable server. (The backend's
 * queries themselves run in store_mongodb against a real server.)
 */
#include "as_store_mongo.c"

#include "as_test_util.h"
#include "ls_test.h"

static json_t *
roundtrip(json_t *value)
{
	bson_t *doc = bson_new();
	bson_iter_t it;
	json_t *back = NULL;

	if (as__append_json(doc, "v", value) &&
	    bson_iter_init_find(&it, doc, "v")) {
		back = as__iter_json(&it);
	}
	bson_destroy(doc);
	return back;
}

LS_TEST(roles_roundtrip_through_bson)
{
	json_t *fixture = ast_fixture(), *acc, *back;
	size_t i;

	json_array_foreach(json_object_get(fixture, "accounts"), i, acc)
	{
		json_t *roles = json_object_get(acc, "roles");
		back = roundtrip(roles);
		LS_CHECK(back != NULL);
		LS_CHECK(json_equal(back, roles));
		json_decref(back);
	}
	json_decref(fixture);
	/* Token roles: an array of names. */
	json_t *names = json_pack("[s,s]", "public", "weather-reader");
	back = roundtrip(names);
	LS_CHECK(json_equal(back, names));
	json_decref(back);
	json_decref(names);
	/* Empty map and empty array survive too. */
	json_t *empty = json_object();
	back = roundtrip(empty);
	LS_CHECK(json_is_object(back) && json_object_size(back) == 0);
	json_decref(back);
	json_decref(empty);
	empty = json_array();
	back = roundtrip(empty);
	LS_CHECK(json_is_array(back) && json_array_size(back) == 0);
	json_decref(back);
	json_decref(empty);
}

LS_TEST(account_document_decodes)
{
	json_t *roles = json_loads("{\"r\": [{\"owner\": \"a\", \"stream\": "
	                           "\"s*\", \"permission\": 3}]}",
	                           0, NULL);
	bson_t *doc = bson_new();
	as_account a;
	ls_error err;

	BSON_APPEND_UTF8(doc, "appKey", "a");
	BSON_APPEND_UTF8(doc, "privateHash", "pbkdf2-sha256$1$x$y");
	BSON_APPEND_UTF8(doc, "secretKey", "sec");
	BSON_APPEND_BOOL(doc, "isPublic", true);
	BSON_APPEND_BOOL(doc, "sharedWrite", false);
	LS_CHECK(as__append_json(doc, "roles", roles));
	LS_CHECK_INT(as__mongo_account_from_doc(doc, &a, &err), 0);
	LS_CHECK_STR(a.app_key, "a");
	LS_CHECK_STR(a.secret_key, "sec");
	LS_CHECK(a.is_public);
	LS_CHECK(!a.shared_write);
	LS_CHECK(json_equal(a.roles, roles));
	LS_CHECK_INT(as_roles_validate(a.roles, &err), 0);
	as_account_clear(&a);
	bson_destroy(doc);

	/* A document missing fields is reported, not crashed on. */
	doc = BCON_NEW("appKey", BCON_UTF8("a"), "roles", BCON_INT32(5));
	LS_CHECK_INT(as__mongo_account_from_doc(doc, &a, &err), LS_ESERVER);
	LS_CHECK(strstr(err.text, "malformed") != NULL);
	bson_destroy(doc);
	json_decref(roles);
}

LS_TEST(reply_counts)
{
	bson_t *reply = BCON_NEW("matchedCount", BCON_INT32(1), "deletedCount",
	                         BCON_INT64(7));

	LS_CHECK_INT(as__reply_count(reply, "matchedCount"), 1);
	LS_CHECK_INT(as__reply_count(reply, "deletedCount"), 7);
	LS_CHECK_INT(as__reply_count(reply, "modifiedCount"), 0);
	bson_destroy(reply);
}

LS_TEST(invalid_uri_is_a_config_error)
{
	ls_error err = { 0 };

	ast_quiet();
	LS_CHECK(as_store_open("mongodb://", &err) == NULL);
	LS_CHECK_INT(err.code, LS_ECONFIG);
	LS_CHECK(strstr(err.text, "MongoDB URI") != NULL);
}

LS_TEST(unreachable_server_fails_fast)
{
	ls_error err = { 0 };

	ast_quiet();
	/* Port 1 on loopback: refused at once, no server selection hang. */
	LS_CHECK(as_store_open("mongodb://127.0.0.1:1/lstest?"
	                       "serverSelectionTimeoutMS=300&"
	                       "connectTimeoutMS=300",
	                       &err) == NULL);
	LS_CHECK_INT(err.code, LS_EUNAVAILABLE);
	LS_CHECK(strstr(err.text, "unreachable") != NULL);
}

LS_TEST_MAIN()
