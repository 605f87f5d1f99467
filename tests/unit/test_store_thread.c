/* Tests of opening the asynchronous store by target: SQLite paths and URLs, errors. What the
 * asynchronous store does for every engine (completion order, group commit, reads beside
 * writes, lazy writes, close, kill -9) is in the store conformance suite (store_conformance*.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "store/store.h"
#include "unit.h"

static char tmpdir[64];

static void finish(uv_loop_t *loop, store_t *s)
{
    store_close(s);
    uv_run(loop, UV_RUN_DEFAULT); /* runs the handle's close callback */
    CHECK_EQ_INT(uv_loop_close(loop), 0);
}

static void test_open_errors(void)
{
    uv_loop_t loop;
    char err[256] = "";
    store_t *s = (store_t *)1;
    uv_loop_init(&loop);
    CHECK(store_open(&loop, "/nonexistent-dir/x/y.sqlite", &s, err, sizeof err) != STORE_OK);
    CHECK(s == NULL);
    CHECK(err[0] != '\0');
    s = (store_t *)1;
    err[0] = '\0';
    CHECK_EQ_INT(store_open(&loop, "mysql://u:secret@h/db", &s, err, sizeof err), STORE_E_INVALID);
    CHECK(s == NULL);
    CHECK(strstr(err, "scheme") != NULL);
    CHECK(strstr(err, "secret") == NULL);
    store_close(NULL);
    /* Defaults, by plain path and by sqlite: URL. */
    char path[128], url[160];
    snprintf(path, sizeof path, "%s/plain.sqlite", tmpdir);
    CHECK_EQ_INT(store_open(&loop, path, &s, err, sizeof err), STORE_OK);
    if (s) store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    snprintf(url, sizeof url, "sqlite:%s", path);
    CHECK_EQ_INT(store_open(&loop, url, &s, err, sizeof err), STORE_OK);
    if (s)
        finish(&loop, s);
    else
        uv_loop_close(&loop);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/parlor_storet_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_open_errors);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return UNIT_DONE();
}
