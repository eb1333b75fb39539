/* The SIMD width, behind a few inline helpers.

   Every kernel is written once against the type `vec` (VLEN numbers of type `real`) and the
   helpers below, and compiled three times (isa_avx512.c, isa_avx2.c, isa_base.c), each with its
   own `#pragma GCC target` and VBYTES: 64-byte vectors for AVX-512, 32 for AVX2, 16 for the
   portable SSE2 baseline. GCC's vector extensions turn `a * b + c` on vectors into the ISA's
   FMA instructions; nothing here is specific to one instruction set.

   Each translation unit (isa_<isa>_<type>.c) defines VBYTES and `real` (float or double) and
   includes this once. */

#include <string.h>

typedef real vec __attribute__((vector_size(VBYTES)));
/* the same vector, allowed at any address (loads and stores of array slices) */
typedef real uvec __attribute__((vector_size(VBYTES), aligned(sizeof(real)), may_alias));

#define VLEN ((int)(VBYTES / sizeof(real)))

static inline vec vload(const real *p) { return *(const uvec *)p; }
static inline void vstore(real *p, vec v) { *(uvec *)p = v; }
/* every lane x: the scalar is broadcast and multiplied by ones, which the compiler folds to a plain
   broadcast (`(vec){0} + x` would cost a real add: 0 + -0.0 is not -0.0) */
static inline vec vset1(real x) {
    const vec ones = (vec){0} + 1;
    return ones * x;
}
