/* libFuzzer target: the cluster URL's parser (redis://[[user]:password@]host[:port][/db]),
 * which reads operator input with percent-encoded credentials. Whatever it accepts must be in
 * bounds: a non-empty host, a port in 1-65535, a db >= 0, and credentials that parse too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/redis_bus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *url = malloc(size + 1);
    memcpy(url, data, size);
    url[size] = '\0';
    char host[256], err[128];
    int port, db;
    if (redis_bus_parse_url(url, host, sizeof host, &port, &db, err, sizeof err) == 0) {
        if (!host[0] || strlen(host) >= sizeof host || port < 1 || port > 65535 || db < 0) abort();
        redis_bus_auth_t auth;
        if (redis_bus_parse_auth(url, &auth) != 0) abort();
        if (strlen(auth.user) >= sizeof auth.user || strlen(auth.password) >= sizeof auth.password)
            abort();
        if (auth.user[0] && !auth.password[0]) abort();
    } else if (!err[0]) {
        abort(); /* a refusal always says why */
    }
    free(url);
    return 0;
}
