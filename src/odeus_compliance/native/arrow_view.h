/* How the native helpers read an Arrow validity bitmap. */
#ifndef ODEUS_ARROW_VIEW_H
#define ODEUS_ARROW_VIEW_H

#include <stdint.h>

/* Whether bit `bit` of an Arrow validity bitmap says null (no bitmap: nothing is null). */
static inline int arrow_is_null(const uint8_t *validity, int64_t bit) {
    return validity != NULL && !((validity[bit >> 3] >> (bit & 7)) & 1);
}

#endif
