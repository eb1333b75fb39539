/* LSTM for the batch rows [r0, r1): the steps of rnnkit/layers/lstm.py (the reference).

   Gate blocks in Keras' order i, f, c (the candidate, g here), o; s = recurrent_activation.
   `gates` comes in holding x_t W + b of every step and leaves holding the activated gates.
   Forward, t = 0 .. T-1:
       z_t = gates_t + h_{t-1} U                                (R, 4H)
       [i, f, g, o] = [s(z_i), s(z_f), act(z_g), s(z_o)]
       c_t = f * c_{t-1} + i * g                                (forget, then write)
       h_t = o * act(c_t)                                       act(c_t) kept in aux
       masked step: h_t = h_{t-1}, c_t = c_{t-1}
   Backward (BPTT), t = T-1 .. 0, from dh = dL/dh_t and dc = dL/dc_t:
       dc += dh * o * act'(c_t)                 do = dh * act(c_t)
       di = dc * g,  df = dc * c_{t-1},  dg = dc * i,           dc_{t-1} = dc * f
       dz = [di s'(i), df s'(f), dg act'(g), do s'(o)]          stored in dz[t]
       dh_{t-1} = dz U^T   (times the dropout mask); a masked step passes dh and dc straight back */

static void KERNEL(lstm_forward)(const void *call, int r0, int r1) {
    const struct rnn_call *c = (const struct rnn_call *)call;
    const int T = c->T, B = c->B, H = c->H, R = r1 - r0, G = 4 * H;
    const real *rm = (const real *)c->rec_mask;
    real *hs = (real *)c->hs, *cs = (real *)c->cs, *gates = (real *)c->gates, *tc_all = (real *)c->aux;
    struct operand Up = operand(H, G, (const real *)c->U, G, (long)R * T);
    real *hp_masked = rm ? (real *)malloc(sizeof(real) * R * H) : NULL;
    for (int t = 0; t < T; t++) {
        const size_t prev = (size_t)(c->keep ? t : t % 2) * B + r0, next = (size_t)(c->keep ? t + 1 : (t + 1) % 2) * B + r0;
        const real *h_prev = hs + prev * H, *c_prev = cs + prev * H;                     /* (R, H) */
        real *h = hs + next * H, *cell = cs + next * H;
        real *z = gates + ((size_t)t * B + r0) * G;                                        /* (R, 4H) */
        real *tc = tc_all + ((size_t)t * B + r0) * H;                                      /* (R, H) act(c_t) */
        const real *hp = h_prev;
        if (rm) {
            for (int i = 0; i < R * H; i++) hp_masked[i] = h_prev[i] * rm[(size_t)r0 * H + i];
            hp = hp_masked;
        }
        gemm_acc(R, G, H, hp, H, &Up, z, G);                                              /* z_t += h_{t-1} U */
        for (int r = 0; r < R; r++) {
            real *zr = z + (size_t)r * G;
            apply_activation(c->ract, zr, 2 * H);                                          /* i, f */
            apply_activation(c->act, zr + 2 * H, H);                                       /* g */
            apply_activation(c->ract, zr + 3 * H, H);                                      /* o */
            const real *ig = zr, *fg = zr + H, *gg = zr + 2 * H, *og = zr + 3 * H;
            const real *cp = c_prev + (size_t)r * H;
            real *cr = cell + (size_t)r * H, *tr = tc + (size_t)r * H, *hr = h + (size_t)r * H;
            for (int j = 0; j < H; j++) cr[j] = fg[j] * cp[j] + ig[j] * gg[j];          /* c_t */
            memcpy(tr, cr, sizeof(real) * H);
            apply_activation(c->act, tr, H);                                               /* act(c_t) */
            for (int j = 0; j < H; j++) hr[j] = og[j] * tr[j];                             /* h_t */
            if (c->mask && !c->mask[(size_t)t * B + r0 + r]) {                             /* masked: carry */
                memcpy(hr, h_prev + (size_t)r * H, sizeof(real) * H);
                memcpy(cr, cp, sizeof(real) * H);
            }
        }
    }
    free(hp_masked);
    free(Up.packed);
}

static void KERNEL(lstm_backward)(const void *call, int r0, int r1) {
    const struct rnn_call *c = (const struct rnn_call *)call;
    const int T = c->T, B = c->B, H = c->H, R = r1 - r0, G = 4 * H;
    const real *rm = (const real *)c->rec_mask, *cs = (const real *)c->cs, *gates = (const real *)c->gates;
    const real *tc_all = (const real *)c->aux, *dh_seq = (const real *)c->dh_seq;
    real *dh = (real *)c->dh + (size_t)r0 * H, *dc = (real *)c->dc + (size_t)r0 * H;  /* (R, H) carried */
    struct operand UTp = operand(G, H, (const real *)c->UT, H, (long)R * T);
    real *g_h = (real *)malloc(sizeof(real) * R * H);
    real *skip = c->mask ? (real *)malloc(sizeof(real) * 2 * R * H) : NULL;            /* skipped dh, dc */
    const int act = c->act, ract = c->ract;
    for (int t = T - 1; t >= 0; t--) {
        const size_t row0 = (size_t)t * B + r0;
        real *dz = (real *)c->dz + row0 * G;                                               /* (R, 4H) */
        for (int r = 0; r < R; r++) {
            const real *z = gates + (row0 + r) * G, *tc = tc_all + (row0 + r) * H;
            const real *c_prev = cs + ((size_t)t * B + r0 + r) * H;                        /* c_{t-1} = cs[t] */
            real *gh = g_h + (size_t)r * H, *dcr = dc + (size_t)r * H, *dzr = dz + (size_t)r * G;
            const real *dhr = dh + (size_t)r * H;
            for (int j = 0; j < H; j++) gh[j] = dhr[j] + (dh_seq ? dh_seq[(row0 + r) * H + j] : 0);  /* dL/dh_t */
            if (c->mask) {
                real *sh = skip + (size_t)r * H, *sc = skip + (size_t)(R + r) * H;
                int real_step = c->mask[row0 + r];
                for (int j = 0; j < H; j++) {                  /* masked: dh and dc go straight back */
                    sh[j] = real_step ? 0 : gh[j];
                    sc[j] = real_step ? 0 : dcr[j];
                    if (!real_step) { gh[j] = 0; dcr[j] = 0; }
                }
            }
            const real *ig = z, *fg = z + H, *gg = z + 2 * H, *og = z + 3 * H;
            for (int j = 0; j < H; j++) {
                real d = dcr[j] + gh[j] * og[j] * derivative(act, tc[j]);                  /* dL/dc_t */
                dzr[j] = d * gg[j] * derivative(ract, ig[j]);                              /* di */
                dzr[H + j] = d * c_prev[j] * derivative(ract, fg[j]);                      /* df */
                dzr[2 * H + j] = d * ig[j] * derivative(act, gg[j]);                       /* dg */
                dzr[3 * H + j] = gh[j] * tc[j] * derivative(ract, og[j]);                  /* do */
                dcr[j] = d * fg[j];                                                        /* dL/dc_{t-1} */
            }
        }
        for (int i = 0; i < R * H; i++) dh[i] = 0;
        gemm_acc(R, H, G, dz, G, &UTp, dh, H);                                            /* dz U^T */
        if (rm)
            for (int i = 0; i < R * H; i++) dh[i] *= rm[(size_t)r0 * H + i];
        if (c->mask)
            for (int i = 0; i < R * H; i++) { dh[i] += skip[i]; dc[i] += skip[R * H + i]; }
    }
    free(skip);
    free(g_h);
    free(UTp.packed);
}
