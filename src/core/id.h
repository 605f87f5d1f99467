/* ObjectId-style ids: 24 lowercase hex characters, time-ordered, unique across processes. */
#ifndef PARLOR_CORE_ID_H
#define PARLOR_CORE_ID_H

#include <stdbool.h>
#include <stdint.h>

#include "core/str.h"

#define ID_LEN  24
#define ID_SIZE (ID_LEN + 1) /* with the terminating NUL */

/* Writes a new id and a NUL into out: 4-byte big-endian seconds since the epoch, 5 random
 * bytes drawn once per process (again in a forked child), and a 3-byte counter that starts at
 * a random value. Thread-safe and lock-free. Ids made in one process within one second sort in
 * creation order except across a wrap of the 24-bit counter. */
void id_generate(char out[ID_SIZE]);

/* Same, with the given timestamp (seconds); for tests and for ids of imported data. */
void id_generate_at(uint32_t seconds, char out[ID_SIZE]);

/* True when s is exactly 24 lowercase hex digits. Uppercase is refused so that an id has one
 * spelling and compares bytewise (SQLite keys, room names). */
bool id_valid(str_t s);

/* The id's timestamp in seconds since the epoch, or -1 when s is not a valid id. */
int64_t id_time(str_t s);

#endif
