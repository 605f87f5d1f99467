/* Conformance cases: users, accounts, user search, contacts (store_conformance.h). */
#include "store_conformance.h"

static void test_users(sc_t *t)
{
    store_user_upsert_t up = {
        .id = STR_LIT("u-1"), .name = STR_LIT("Una"), .role = STR_LIT("owner")};
    CHECK_EQ_INT(sc_user_upsert(t, &up, 1000), STORE_OK);
    /* A token without name/role keeps what is stored. */
    up = (store_user_upsert_t){.id = STR_LIT("u-1"), .name = STR_NULL, .role = STR_LIT("")};
    CHECK_EQ_INT(sc_user_upsert(t, &up, 2000), STORE_OK);
    up = (store_user_upsert_t){.id = STR_LIT("u_2"), .name = STR_LIT("Duo"), .role = STR_NULL};
    CHECK_EQ_INT(sc_user_upsert(t, &up, 3000), STORE_OK);

    /* Ids: 1-64 of [A-Za-z0-9_-]. */
    char long_id[66];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    const char *bad[] = {"", "a b", "a|b", "é", "a/b", long_id};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        up = (store_user_upsert_t){.id = str_cstr(bad[i]), .name = STR_NULL, .role = STR_NULL};
        CHECK_EQ_INT(sc_user_upsert(t, &up, 1), STORE_E_INVALID);
    }
    up = (store_user_upsert_t){.id = str_make(long_id, 64), .name = STR_NULL, .role = STR_NULL};
    CHECK_EQ_INT(sc_user_upsert(t, &up, 1), STORE_OK);
    char long_name[STORE_NAME_MAX + 2];
    memset(long_name, 'n', sizeof long_name);
    up = (store_user_upsert_t){
        .id = STR_LIT("u-1"), .name = str_make(long_name, STORE_NAME_MAX + 1), .role = STR_NULL};
    CHECK_EQ_INT(sc_user_upsert(t, &up, 1), STORE_E_INVALID);

    /* last_seen only moves forward; unknown users are created. */
    store_user_seen_t seen = {.id = STR_LIT("u-1"), .last_seen = 5000};
    CHECK_EQ_INT(sc_user_seen(t, &seen), STORE_OK);
    seen.last_seen = 4000;
    CHECK_EQ_INT(sc_user_seen(t, &seen), STORE_OK);
    seen = (store_user_seen_t){.id = STR_LIT("ghost"), .last_seen = 7000};
    CHECK_EQ_INT(sc_user_seen(t, &seen), STORE_OK);
    seen.last_seen = -1;
    CHECK_EQ_INT(sc_user_seen(t, &seen), STORE_E_INVALID);

    str_t ids[] = {STR_LIT("u_2"), STR_LIT("nobody"), STR_LIT("u-1"), STR_LIT("ghost")};
    store_users_get_t get = {.ids = ids, .count = 4};
    store_arena_t ar = sc_arena();
    CHECK_EQ_INT(sc_users_get(t, &get, &ar), STORE_OK);
    CHECK_EQ_INT(get.found, 3);
    if (get.found == 3) {
        CHECK_MEM(get.users[0].id.ptr, get.users[0].id.len, "u_2");
        CHECK_MEM(get.users[0].name.ptr, get.users[0].name.len, "Duo");
        CHECK(get.users[0].role.ptr == NULL);
        CHECK_EQ_INT(get.users[0].created_at, 3000);
        CHECK_MEM(get.users[1].id.ptr, get.users[1].id.len, "u-1");
        CHECK_MEM(get.users[1].name.ptr, get.users[1].name.len, "Una");
        CHECK_MEM(get.users[1].role.ptr, get.users[1].role.len, "owner");
        CHECK_EQ_INT(get.users[1].last_seen, 5000);
        CHECK(get.users[1].password_hash.ptr == NULL);
        CHECK_MEM(get.users[2].id.ptr, get.users[2].id.len, "ghost");
        CHECK_EQ_INT(get.users[2].last_seen, 7000);
        CHECK(get.users[2].name.ptr == NULL);
    }
    str_t bad_ids[] = {STR_LIT("ok"), STR_LIT("not ok")};
    get = (store_users_get_t){.ids = bad_ids, .count = 2};
    CHECK_EQ_INT(sc_users_get(t, &get, &ar), STORE_E_INVALID);
    get = (store_users_get_t){.ids = ids, .count = STORE_IDS_MAX + 1};
    CHECK_EQ_INT(sc_users_get(t, &get, &ar), STORE_E_INVALID);
    get = (store_users_get_t){.ids = NULL, .count = 0};
    CHECK_EQ_INT(sc_users_get(t, &get, &ar), STORE_OK);
    CHECK_EQ_INT(get.found, 0);
    /* Results that need memory but get none. */
    store_arena_t none = {0};
    get = (store_users_get_t){.ids = ids, .count = 1};
    CHECK_EQ_INT(sc_users_get(t, &get, &none), STORE_E_NOSPACE);
}

static void test_accounts(sc_t *t)
{
    store_account_create_t ac = {.username = STR_LIT("Alice"),
                                 .password_hash = STR_LIT("$argon2id$v=19$hash"),
                                 .name = STR_LIT("Alice A."),
                                 .role = STR_LIT("tenant")};
    CHECK_EQ_INT(sc_account_create(t, &ac, 1000), STORE_OK);
    CHECK(id_valid(str_cstr(ac.id)));
    char alice[ID_SIZE];
    memcpy(alice, ac.id, ID_SIZE);

    /* Usernames are unique case-insensitively. */
    store_account_create_t dup = {.username = STR_LIT("alice"),
                                  .password_hash = STR_LIT("h2"),
                                  .name = STR_NULL,
                                  .role = STR_NULL};
    CHECK_EQ_INT(sc_account_create(t, &dup, 1000), STORE_E_CONFLICT);
    CHECK_EQ_INT(dup.id[0], '\0');
    dup.username = STR_LIT("ALICE");
    CHECK_EQ_INT(sc_account_create(t, &dup, 1000), STORE_E_CONFLICT);

    store_account_create_t bad = {
        .username = STR_LIT(""), .password_hash = STR_LIT("h"), .name = STR_NULL, .role = STR_NULL};
    CHECK_EQ_INT(sc_account_create(t, &bad, 1), STORE_E_INVALID);
    bad = (store_account_create_t){
        .username = STR_LIT("x"), .password_hash = STR_NULL, .name = STR_NULL, .role = STR_NULL};
    CHECK_EQ_INT(sc_account_create(t, &bad, 1), STORE_E_INVALID);
    bad = (store_account_create_t){.username = STR_LIT("x"),
                                   .password_hash = STR_LIT("h"),
                                   .name = STR_NULL,
                                   .role = STR_LIT("a-role-name-that-is-far-too-long-to-keep")};
    CHECK_EQ_INT(sc_account_create(t, &bad, 1), STORE_E_INVALID);

    store_arena_t ar = sc_arena();
    store_account_get_t get = {.username = STR_LIT("aLiCe")};
    CHECK_EQ_INT(sc_account_get(t, &get, &ar), STORE_OK);
    CHECK_MEM(get.user.id.ptr, get.user.id.len, alice);
    CHECK_MEM(get.user.username.ptr, get.user.username.len, "Alice");
    CHECK_MEM(get.user.password_hash.ptr, get.user.password_hash.len, "$argon2id$v=19$hash");
    CHECK_MEM(get.user.name.ptr, get.user.name.len, "Alice A.");
    CHECK_MEM(get.user.role.ptr, get.user.role.len, "tenant");
    CHECK_EQ_INT(get.user.created_at, 1000);
    get.username = STR_LIT("nobody");
    CHECK_EQ_INT(sc_account_get(t, &get, &ar), STORE_E_NOT_FOUND);
    get.username = STR_NULL;
    CHECK_EQ_INT(sc_account_get(t, &get, &ar), STORE_E_INVALID);

    /* An account is a user: it can be upserted from its own token. */
    store_user_upsert_t up = {.id = str_cstr(alice), .name = STR_NULL, .role = STR_LIT("owner")};
    CHECK_EQ_INT(sc_user_upsert(t, &up, 2000), STORE_OK);
    get.username = STR_LIT("alice");
    CHECK_EQ_INT(sc_account_get(t, &get, &ar), STORE_OK);
    CHECK_MEM(get.user.role.ptr, get.user.role.len, "owner");
    CHECK_MEM(get.user.name.ptr, get.user.name.len, "Alice A.");
}

static void test_users_search(sc_t *t)
{
    const char *names[] = {"alice", "Alicia", "bob", "Albert", "al", "alz", "al{"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        store_account_create_t ac = {.username = str_cstr(names[i]),
                                     .password_hash = STR_LIT("h"),
                                     .name = STR_NULL,
                                     .role = STR_NULL};
        CHECK_EQ_INT(sc_account_create(t, &ac, 1000), STORE_OK);
    }
    sc_upsert(t, "alfred", "Not an account");
    store_arena_t ar = sc_arena();
    store_users_search_t s = {.prefix = STR_LIT("AL"), .limit = 10};
    CHECK_EQ_INT(sc_users_search(t, &s, &ar), STORE_OK);
    CHECK_EQ_INT(s.count, 6);
    if (s.count == 6) {
        CHECK_MEM(s.users[0].username.ptr, s.users[0].username.len, "al");
        CHECK_MEM(s.users[1].username.ptr, s.users[1].username.len, "Albert");
        CHECK_MEM(s.users[2].username.ptr, s.users[2].username.len, "alice");
        CHECK_MEM(s.users[3].username.ptr, s.users[3].username.len, "Alicia");
        CHECK_MEM(s.users[4].username.ptr, s.users[4].username.len, "alz");
        CHECK_MEM(s.users[5].username.ptr, s.users[5].username.len, "al{");
        CHECK(s.users[0].password_hash.ptr == NULL);
    }
    s = (store_users_search_t){.prefix = STR_LIT("ali"), .limit = 1};
    CHECK_EQ_INT(sc_users_search(t, &s, &ar), STORE_OK);
    CHECK_EQ_INT(s.count, 1);
    CHECK_MEM(s.users[0].username.ptr, s.users[0].username.len, "alice");
    s = (store_users_search_t){.prefix = STR_LIT("alz"), .limit = 0};
    CHECK_EQ_INT(sc_users_search(t, &s, &ar), STORE_OK);
    CHECK_EQ_INT(s.count, 1);
    s = (store_users_search_t){.prefix = STR_LIT("zz"), .limit = 5};
    CHECK_EQ_INT(sc_users_search(t, &s, &ar), STORE_OK);
    CHECK_EQ_INT(s.count, 0);
    s = (store_users_search_t){.prefix = str_make("\xff\xff", 2), .limit = 5};
    CHECK_EQ_INT(sc_users_search(t, &s, &ar), STORE_OK);
    CHECK_EQ_INT(s.count, 0);
    s = (store_users_search_t){.prefix = STR_LIT(""), .limit = 5};
    CHECK_EQ_INT(sc_users_search(t, &s, &ar), STORE_E_INVALID);
    /* A too-small arena cuts the list short, unless not even one fits. */
    char small[2 * sizeof(store_user_t) + 40];
    store_arena_t sa = {small, sizeof small, 0, 0};
    s = (store_users_search_t){.prefix = STR_LIT("al"), .limit = 10};
    CHECK_EQ_INT(sc_users_search(t, &s, &sa), STORE_OK);
    CHECK(s.count >= 1 && s.count < 6);
    store_arena_t none = {0};
    CHECK_EQ_INT(sc_users_search(t, &s, &none), STORE_E_NOSPACE);
}

static void test_contacts(sc_t *t)
{
    char conv[ID_SIZE];
    store_arena_t ar = sc_arena();
    sc_direct(t, "me", "zoe", conv);
    sc_direct(t, "me", "bob", conv);
    sc_direct(t, "bob", "carl", conv); /* not mine */
    str_t parts[] = {STR_LIT("bob"), STR_LIT("amy")};
    store_group_create_t g = {.creator = STR_LIT("me"), .participants = parts, .count = 2};
    CHECK_EQ_INT(sc_group_create(t, &g, &ar, 1), STORE_OK);
    store_contacts_t c = {.user = STR_LIT("me")};
    CHECK_EQ_INT(sc_contacts(t, &c, &ar), STORE_OK);
    CHECK_EQ_INT(c.count, 3);
    CHECK(!c.has_more);
    if (c.count == 3) {
        CHECK_MEM(c.user_ids[0].ptr, c.user_ids[0].len, "amy");
        CHECK_MEM(c.user_ids[1].ptr, c.user_ids[1].len, "bob");
        CHECK_MEM(c.user_ids[2].ptr, c.user_ids[2].len, "zoe");
    }
    c = (store_contacts_t){.user = STR_LIT("me"), .limit = 2};
    CHECK_EQ_INT(sc_contacts(t, &c, &ar), STORE_OK);
    CHECK_EQ_INT(c.count, 2);
    CHECK(c.has_more);
    c = (store_contacts_t){.user = STR_LIT("loner")};
    CHECK_EQ_INT(sc_contacts(t, &c, &ar), STORE_OK);
    CHECK_EQ_INT(c.count, 0);
    c = (store_contacts_t){.user = STR_LIT("")};
    CHECK_EQ_INT(sc_contacts(t, &c, &ar), STORE_E_INVALID);
    store_arena_t none = {0};
    c = (store_contacts_t){.user = STR_LIT("me")};
    CHECK_EQ_INT(sc_contacts(t, &c, &none), STORE_E_NOSPACE);
    char small[sizeof(str_t) * 2 + 8];
    store_arena_t sa = {small, sizeof small, 0, 0};
    CHECK_EQ_INT(sc_contacts(t, &c, &sa), STORE_OK);
    CHECK(c.count >= 1 && c.count < 3);
    CHECK(c.has_more);
    store_req_t r = {.op = STORE_OP_CONTACTS, .arena = sc_arena()};
    r.u.contacts.user = STR_LIT("bob");
    CHECK_EQ_INT(sc_exec(t, &r), STORE_OK);
    CHECK_EQ_INT(r.u.contacts.count, 3); /* amy, carl, me */
}

/* Presence is for those a user has written to: AUDIENCE = members of the conversations the
 * user sent in, VISIBLE = those who sent in a conversation of the user. */
static void test_contacts_presence(sc_t *t)
{
    char dz[ID_SIZE], db_[ID_SIZE], grp[ID_SIZE], buf[256];
    store_arena_t ar = sc_arena();
    sc_direct(t, "me", "zoe", dz);
    sc_direct(t, "me", "bob", db_);
    str_t parts[] = {STR_LIT("bob"), STR_LIT("amy")};
    store_group_create_t g = {.creator = STR_LIT("me"), .participants = parts, .count = 2};
    CHECK_EQ_INT(sc_group_create(t, &g, &ar, 1), STORE_OK);
    memcpy(grp, g.conv.id, ID_SIZE);
    /* Nobody wrote yet: nobody sees anybody (a conversation alone is not enough). */
    CHECK(strcmp(sc_contacts_of(t, "me", STORE_CONTACTS_AUDIENCE, buf, sizeof buf), "") == 0);
    CHECK(strcmp(sc_contacts_of(t, "me", STORE_CONTACTS_VISIBLE, buf, sizeof buf), "") == 0);
    CHECK(strcmp(sc_contacts_of(t, "me", STORE_CONTACTS_ALL, buf, sizeof buf), "amy,bob,zoe") == 0);
    sc_send(t, dz, "zoe", "hi me");
    sc_send(t, grp, "me", "hi all");
    CHECK(strcmp(sc_contacts_of(t, "me", STORE_CONTACTS_AUDIENCE, buf, sizeof buf), "amy,bob") ==
          0);
    CHECK(strcmp(sc_contacts_of(t, "me", STORE_CONTACTS_VISIBLE, buf, sizeof buf), "zoe") == 0);
    CHECK(strcmp(sc_contacts_of(t, "bob", STORE_CONTACTS_VISIBLE, buf, sizeof buf), "me") == 0);
    CHECK(strcmp(sc_contacts_of(t, "bob", STORE_CONTACTS_AUDIENCE, buf, sizeof buf), "") == 0);
    CHECK(strcmp(sc_contacts_of(t, "zoe", STORE_CONTACTS_AUDIENCE, buf, sizeof buf), "me") == 0);
    CHECK(strcmp(sc_contacts_of(t, "zoe", STORE_CONTACTS_VISIBLE, buf, sizeof buf), "") == 0);
    /* In one batch (SQLite: the writer's cached path after the first send): bob writes too. */
    static char arenas[3][1024];
    store_req_t r[3];
    const char *from[] = {"me", "bob", "bob"};
    for (int i = 0; i < 3; i++) {
        r[i] = (store_req_t){.op = STORE_OP_MESSAGE_INSERT,
                             .arena = {arenas[i], sizeof arenas[i], 0, 0}};
        r[i].u.message_insert = (store_message_insert_t){.sender = str_cstr(from[i]),
                                                         .conversation_id = str_cstr(db_),
                                                         .content = STR_LIT("in a batch")};
    }
    sc_run_batch(t, t->s, (store_req_t *[]){&r[0], &r[1], &r[2]}, 3);
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(r[i].status, STORE_OK);
    CHECK_EQ_INT(r[2].u.message_insert.msg.seq, 3);
    CHECK(strcmp(sc_contacts_of(t, "me", STORE_CONTACTS_VISIBLE, buf, sizeof buf), "bob,zoe") == 0);
    CHECK(strcmp(sc_contacts_of(t, "bob", STORE_CONTACTS_AUDIENCE, buf, sizeof buf), "me") == 0);
}

const sc_case_t sc_cases_users[] = {
    {"users", test_users},
    {"accounts", test_accounts},
    {"users_search", test_users_search},
    {"contacts", test_contacts},
    {"contacts_presence", test_contacts_presence},
    {NULL, NULL},
};
