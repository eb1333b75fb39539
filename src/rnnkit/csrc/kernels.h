/* What a kernel call gets, and the table of kernels of one instruction set and float type.

   A call runs a whole sequence, forward or backward, for the batch rows [r0, r1); rows are
   independent in a recurrent layer, so the thread pool hands row blocks to threads that never
   wait for each other. All arrays are C-contiguous, time-major, laid out as the NumPy layers
   lay them out (see each cell's file), and `real` is float or double per the table. */

#ifndef RNNKIT_KERNELS_H
#define RNNKIT_KERNELS_H

struct rnn_call {
    int T, B, H;              /* steps, batch rows, units */
    int act, ract;            /* activation, recurrent_activation (enum activation) */
    int keep;                 /* forward: 1 keeps every step for backward, 0 only the running state */
    int reset_after;          /* GRU: the reset gate applied after the recurrent product */
    const void *xw;           /* SimpleRNN: (T, B, H) x_t W + b of every step, computed before the call */
    const void *U;            /* (H, G*H) recurrent kernel */
    const void *UT;           /* (G*H, H) its transpose, contiguous */
    const void *rec_bias;     /* GRU reset_after: (3H,) recurrent bias b', or NULL for none */
    const unsigned char *mask;/* (T, B) 1 = a real step, or NULL */
    const void *rec_mask;     /* (B, H) recurrent dropout mask, or NULL */
    void *hs;                 /* (T+1, B, H) states, hs[0] = h_0 given; (2, B, H) when !keep */
    void *cs;                 /* LSTM: cell states, laid out as hs */
    void *gates;              /* LSTM, GRU: (T, B, G*H): x_t W + b in, the activated gates out */
    void *aux;                /* LSTM: act(c_t) (T, B, H); GRU reset_after: h_{t-1} U_h + b'_h (T, B, H) */
    const void *dh_seq;       /* backward: (T, B, H) dL/dh_t from each step's output, or NULL */
    void *dh;                 /* backward: (B, H) dL/dh_T in, dL/dh_0 out */
    void *dc;                 /* LSTM backward: (B, H) dL/dc_T in, dL/dc_0 out */
    void *dz;                 /* backward: (T, B, G*H) dL/d pre-activations, for the weight gradients */
    void *dr;                 /* GRU reset_after backward: (T, B, 3H) dL/d(h U + b') */
};

/* the large products outside the time loop: C (m x n) = op(A) op(B), or += with accumulate */
struct mm_call {
    int m, n, k;
    const void *A, *B;
    void *C;
    int lda, ldb, ldc;        /* row strides of A, B, C as stored */
    int trans_a, trans_b;     /* op(A) = A^T: A is stored k x m; op(B) = B^T: B is stored n x k */
    int accumulate;           /* 1: C += ..., 0: C = ... */
    int split_cols;           /* the tasks' [r0, r1) are columns of C (else rows) */
};

/* a kernel runs one call (a struct rnn_call or struct mm_call) over the rows [r0, r1) of the batch
   (for a product: of C's rows or columns) */
typedef void (*kernel_fn)(const void *call, int r0, int r1);

struct kernel_table {
    const char *isa;
    kernel_fn simple_rnn_forward, simple_rnn_backward;
    kernel_fn lstm_forward, lstm_backward;
    kernel_fn gru_forward, gru_backward;
    kernel_fn matmul;
};

#endif
