/* (ptr,len) string helpers that are not worth inlining. */
#include "core/str.h"

/* Present so the module has a translation unit; see str.h for the inline helpers. */
bool str_is_empty(str_t s)
{
    return s.len == 0;
}
