/* Every cell's kernels for one instruction set and one float type.

   Included once by each isa_<isa>_<type>.c, which first says what to compile for: the
   `#pragma GCC target`, VBYTES (the vector width), `real`, and KERNEL(name), which gives each
   function its ISA and type suffix. This is how one source becomes the AVX-512, AVX2 and
   baseline kernels without a copy per instruction set. */

#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "simd.h"
#include "mathfun.h"
#include "gemm.h"

#include "simple_rnn.c"
#include "lstm.c"
#include "gru.c"
#include "matmul.c"

const struct kernel_table KERNEL(table) = {
    .isa = ISA_NAME,
    .simple_rnn_forward = KERNEL(simple_rnn_forward),
    .simple_rnn_backward = KERNEL(simple_rnn_backward),
    .lstm_forward = KERNEL(lstm_forward),
    .lstm_backward = KERNEL(lstm_backward),
    .gru_forward = KERNEL(gru_forward),
    .gru_backward = KERNEL(gru_backward),
    .matmul = KERNEL(matmul),
};
