/* SimpleRNN, the article's recurrence, for the batch rows [r0, r1): the same steps as
   rnnkit/layers/simple_rnn.py, which stays the reference this file is tested against.

   Forward, t = 0 .. T-1 (a_t's input part x_t W + b comes in as xw[t]):
       a_t = xw_t + h_{t-1} U                         (R, H)   h_{t-1} times the dropout mask, if any
       h_t = act(a_t)                                  in place, in hs[t + 1]
       masked step: h_t = h_{t-1}
   Backward (BPTT), t = T-1 .. 0, with g_t = dL/dh_t:
       g_t  = dh_seq[t] + (carried back from step t + 1)
       da_t = g_t * act'(a_t)                          act' written with h_t; stored in dz[t]
       carried back: da_t U^T   (times the dropout mask); a masked step passes g_t straight back
   The weight gradients are one matmul each over all steps, done by NumPy after the call.
   U (or U^T) is packed once per call for the step products (gemm.h). */

static void KERNEL(simple_rnn_forward)(const void *call, int r0, int r1) {
    const struct rnn_call *c = (const struct rnn_call *)call;
    const int T = c->T, B = c->B, H = c->H, R = r1 - r0;
    const real *xw = (const real *)c->xw, *rm = (const real *)c->rec_mask;
    real *hs = (real *)c->hs;
    struct operand Up = operand(H, H, (const real *)c->U, H, (long)R * T);
    real *hp_masked = rm ? (real *)malloc(sizeof(real) * R * H) : NULL;
    for (int t = 0; t < T; t++) {
        const real *h_prev = hs + ((size_t)(c->keep ? t : t % 2) * B + r0) * H;          /* (R, H) */
        real *h = hs + ((size_t)(c->keep ? t + 1 : (t + 1) % 2) * B + r0) * H;           /* (R, H) */
        const real *hp = h_prev;
        if (rm) {
            for (int i = 0; i < R * H; i++) hp_masked[i] = h_prev[i] * rm[(size_t)r0 * H + i];
            hp = hp_masked;
        }
        memcpy(h, xw + ((size_t)t * B + r0) * H, sizeof(real) * R * H);                 /* a_t = x_t W + b */
        gemm_acc(R, H, H, hp, H, &Up, h, H);                                              /*     + h_{t-1} U */
        apply_activation(c->act, h, R * H);                                               /* h_t = act(a_t) */
        if (c->mask)
            for (int r = 0; r < R; r++)
                if (!c->mask[(size_t)t * B + r0 + r])                                     /* masked: carry h */
                    memcpy(h + (size_t)r * H, h_prev + (size_t)r * H, sizeof(real) * H);
    }
    free(hp_masked);
    free(Up.packed);
}

static void KERNEL(simple_rnn_backward)(const void *call, int r0, int r1) {
    const struct rnn_call *c = (const struct rnn_call *)call;
    const int T = c->T, B = c->B, H = c->H, R = r1 - r0;
    const real *rm = (const real *)c->rec_mask, *hs = (const real *)c->hs;
    struct operand UTp = operand(H, H, (const real *)c->UT, H, (long)R * T);
    const real *dh_seq = (const real *)c->dh_seq;
    real *dh = (real *)c->dh + (size_t)r0 * H;                                           /* (R, H) carried */
    real *skipped = c->mask ? (real *)malloc(sizeof(real) * R * H) : NULL;
    for (int t = T - 1; t >= 0; t--) {
        real *g = (real *)c->dz + ((size_t)t * B + r0) * H;                                 /* (R, H) da_t */
        const size_t row0 = (size_t)t * B + r0;
        for (int i = 0; i < R * H; i++) g[i] = dh[i] + (dh_seq ? dh_seq[row0 * H + i] : 0);  /* g_t */
        if (c->mask)
            for (int r = 0; r < R; r++) {
                real *gr = g + (size_t)r * H, *sr = skipped + (size_t)r * H;
                if (c->mask[row0 + r]) {
                    for (int j = 0; j < H; j++) sr[j] = 0;
                } else {                                        /* masked: g goes straight to h_{t-1} */
                    for (int j = 0; j < H; j++) { sr[j] = gr[j]; gr[j] = 0; }
                }
            }
        times_derivative(c->act, g, hs + ((size_t)(t + 1) * B + r0) * H, R * H);        /* da_t */
        for (int i = 0; i < R * H; i++) dh[i] = 0;
        gemm_acc(R, H, H, g, H, &UTp, dh, H);                                           /* da_t U^T */
        if (rm)
            for (int i = 0; i < R * H; i++) dh[i] *= rm[(size_t)r0 * H + i];
        if (c->mask)
            for (int i = 0; i < R * H; i++) dh[i] += skipped[i];
    }
    free(skipped);
    free(UTp.packed);
}
