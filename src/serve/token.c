/* `parlor token`: a token signed with the server's own secret, for development. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "serve/serve.h"
#include "serve/serve_int.h"

/* "90", "90s", "15m", "1h", "7d" -> seconds; -1 when malformed. */
static long long parse_ttl(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v <= 0) return -1;
    long long mult = !*end || !strcmp(end, "s") ? 1
                     : !strcmp(end, "m")        ? 60
                     : !strcmp(end, "h")        ? 3600
                     : !strcmp(end, "d")        ? 86400
                                                : -1;
    if (mult < 0 || v > 10LL * 365 * 86400 / mult) return -1;
    return v * mult;
}

static int token_run(serve_config_t *cfg, const char *user, const char *name, const char *role,
                     const char *ttl, bool new_secret);

/* --scope server: a server credential for /api/server/... (issue 15); NULL: a user's token. */
static const char *token_scope;

static void token_usage(void)
{
    printf(
        "usage: parlor token <userId> [--name N] [--role R] [--ttl 1h] [--new-secret]\n"
        "                    [--scope server]\n"
        "                    [--data DIR] [--jwt-secret S] [--jwt-issuer I] [--jwt-audience A]\n"
        "\n"
        "Prints a token for <userId> signed with the secret `parlor serve` uses, for development\n"
        "(a platform signs its own tokens). The secret is found as the server finds it: the\n"
        "--jwt-secret given (or PARLOR_JWT_SECRET), else <data>/jwt-secret, with --data (or\n"
        "PARLOR_DATA, default ./data) as the server's. Run it with the same --data as the server.\n"
        "\n"
        "  --name N       the display name claim (left out when not given)\n"
        "  --role R       the role claim, e.g. tenant or owner (left out when not given)\n"
        "  --ttl T        lifetime: 90s, 15m, 1h (default), 7d\n"
        "  --scope server a server credential for the platform's backend: accepted on\n"
        "                 /api/server/... only, refused by user endpoints and sockets; <userId>\n"
        "                 then names the backend (logs), e.g. parlor token platform --scope "
        "server\n"
        "  --new-secret   generate <data>/jwt-secret when it is missing (otherwise that is an\n"
        "                 error: a new secret makes tokens the running server refuses)\n");
}

int token_main(int argc, char **argv)
{
    /* token's own flags come first; the rest are the server's options (data, jwt-*). */
    const char *name = NULL, *role = NULL, *ttl = "1h";
    bool new_secret = false;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            token_usage();
            free(rest);
            return 0;
        }
        if (!strcmp(argv[i], "--new-secret")) {
            new_secret = true;
            continue;
        }
        if (!strcmp(argv[i], "--scope") && i + 1 < argc) {
            if (strcmp(argv[i + 1], "server") != 0) {
                fprintf(stderr, "parlor token: --scope takes only server\n");
                free(rest);
                return 2;
            }
            token_scope = "server";
            i++;
            continue;
        }
        if ((!strcmp(argv[i], "--name") || !strcmp(argv[i], "--role") ||
             !strcmp(argv[i], "--ttl")) &&
            i + 1 < argc) {
            if (argv[i][2] == 'n')
                name = argv[i + 1];
            else if (argv[i][2] == 'r')
                role = argv[i + 1];
            else
                ttl = argv[i + 1];
            i++;
            continue;
        }
        rest[nrest++] = argv[i];
    }
    serve_config_t cfg;
    char *pos[1];
    int npos;
    log_level = LOG_WARN;
    int rc = serve_load_config(nrest, rest, &cfg, pos, 1, &npos, "token");
    free(rest);
    if (rc < 0) return 2;
    if (log_level < LOG_WARN) log_level = LOG_WARN; /* stdout is the token; stderr stays quiet */
    int status = token_run(&cfg, npos == 1 ? pos[0] : NULL, name, role, ttl, new_secret);
    serve_config_free(&cfg);
    return status;
}

static int token_run(serve_config_t *cfgp, const char *user, const char *name, const char *role,
                     const char *ttl, bool new_secret)
{
    serve_config_t cfg = *cfgp;
    if (!user || !auth_sub_is_valid(user, strlen(user))) {
        fprintf(stderr, "parlor token: give one user id (1-64 characters of A-Z a-z 0-9 _ -)\n");
        return 2;
    }
    long long ttl_s = parse_ttl(ttl);
    if (ttl_s < 0) {
        fprintf(stderr, "parlor token: invalid --ttl '%s' (e.g. 90s, 15m, 1h, 7d)\n", ttl);
        return 2;
    }
    if (cfg.jwt_public_key[0]) {
        fprintf(stderr, "parlor token: tokens for a public-key setup come from your platform\n");
        return 2;
    }
    if ((name && strlen(name) > 128) || (role && strlen(role) > 32)) {
        fprintf(stderr, "parlor token: --name is at most 128 bytes, --role at most 32\n");
        return 2;
    }
    auth_jwt_t *jwt;
    bool can_sign;
    if (serve_make_jwt(&cfg, new_secret, &jwt, &can_sign) < 0) return 1;
    char *token = NULL;
    if (auth_jwt_sign_scope(jwt, user, name, role, token_scope, (int64_t)time(NULL), ttl_s,
                            &token) != AUTH_OK) {
        fprintf(stderr, "parlor token: signing failed\n");
        auth_jwt_free(jwt);
        return 1;
    }
    printf("%s\n", token);
    free(token);
    auth_jwt_free(jwt);
    return 0;
}
