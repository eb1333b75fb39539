/* GRU for the batch rows [r0, r1): the steps of rnnkit/layers/gru.py (the reference), both forms.

   Gate blocks in Keras' order z (update), r (reset), h (the candidate hh); s = recurrent_activation.
   `gates` comes in holding x_t W + b_in of every step and leaves holding the activated z, r, hh.
   Forward, t = 0 .. T-1, hp = h_{t-1} (times the dropout mask, if any):
       reset_after=True  (PyTorch's form):   u = hp U + b'              (R, 3H)   u_h kept in aux
           z = s(x_z + u_z),  r = s(x_r + u_r),  hh = act(x_h + r * u_h)
       reset_after=False (the original):
           z = s(x_z + hp U_z),  r = s(x_r + hp U_r),  hh = act(x_h + (r * hp) U_h)
       h_t = z * h_{t-1} + (1 - z) * hh        masked step: h_t = h_{t-1}
   Backward (BPTT), t = T-1 .. 0, from g = dL/dh_t:
       da_h = g (1 - z) act'(hh),   dz = g (h_{t-1} - hh) s'(z)           (into dz[t]: blocks z, r, h)
       reset_after:  dr = da_h u_h s'(r);  du = [dz, dr, da_h r] (into dr[t]);  dhp = du U^T
       otherwise:    d(r hp) = da_h U_h^T;  dr = d(r hp) hp s'(r);  dhp = [dz, dr] U_zr^T + d(r hp) r
       dL/dh_{t-1} = dhp (times the dropout mask) + g z;  a masked step passes g straight back */

static void KERNEL(gru_forward)(const void *call, int r0, int r1) {
    const struct rnn_call *c = (const struct rnn_call *)call;
    const int T = c->T, B = c->B, H = c->H, R = r1 - r0, G = 3 * H;
    const real *rm = (const real *)c->rec_mask, *U = (const real *)c->U, *b_rec = (const real *)c->rec_bias;
    real *hs = (real *)c->hs, *gates = (real *)c->gates, *rec_h = (real *)c->aux;
    const int after = c->reset_after;
    /* reset_after: all of U in one product; otherwise U_zr (H x 2H) and U_h (H x H) apart */
    struct operand Up = operand(H, after ? G : 2 * H, U, G, (long)R * T);
    struct operand Uhp = operand(H, H, U + 2 * H, G, after ? 0 : (long)R * T);
    real *hp_masked = rm ? (real *)malloc(sizeof(real) * R * H) : NULL;
    real *u = (real *)malloc(sizeof(real) * R * (after ? G : H));     /* hp U + b' , or r * hp */
    for (int t = 0; t < T; t++) {
        const size_t prev = (size_t)(c->keep ? t : t % 2) * B + r0, next = (size_t)(c->keep ? t + 1 : (t + 1) % 2) * B + r0;
        const real *h_prev = hs + prev * H;                                                /* (R, H) */
        real *h = hs + next * H;
        real *x = gates + ((size_t)t * B + r0) * G;                                        /* (R, 3H) */
        const real *hp = h_prev;
        if (rm) {
            for (int i = 0; i < R * H; i++) hp_masked[i] = h_prev[i] * rm[(size_t)r0 * H + i];
            hp = hp_masked;
        }
        if (after) {
            for (int r = 0; r < R; r++)
                for (int j = 0; j < G; j++) u[(size_t)r * G + j] = b_rec ? b_rec[j] : 0;
            gemm_acc(R, G, H, hp, H, &Up, u, G);                                          /* u = hp U + b' */
            for (int r = 0; r < R; r++) {
                real *xr = x + (size_t)r * G, *ur = u + (size_t)r * G;
                for (int j = 0; j < 2 * H; j++) xr[j] += ur[j];
                apply_activation(c->ract, xr, 2 * H);                                      /* z, r */
                if (rec_h) memcpy(rec_h + ((size_t)t * B + r0 + r) * H, ur + 2 * H, sizeof(real) * H);
                for (int j = 0; j < H; j++) xr[2 * H + j] += xr[H + j] * ur[2 * H + j];   /* x_h + r * u_h */
            }
        } else {
            gemm_acc(R, 2 * H, H, hp, H, &Up, x, G);                                      /* x_zr += hp U_zr */
            for (int r = 0; r < R; r++) {
                real *xr = x + (size_t)r * G, *ur = u + (size_t)r * H;
                apply_activation(c->ract, xr, 2 * H);                                      /* z, r */
                for (int j = 0; j < H; j++) ur[j] = xr[H + j] * hp[(size_t)r * H + j];     /* r * hp */
            }
            gemm_acc(R, H, H, u, H, &Uhp, x + 2 * H, G);                                  /* x_h += (r hp) U_h */
        }
        for (int r = 0; r < R; r++) {
            real *xr = x + (size_t)r * G, *hr = h + (size_t)r * H;
            const real *hpr = h_prev + (size_t)r * H;
            apply_activation(c->act, xr + 2 * H, H);                                       /* hh */
            for (int j = 0; j < H; j++) hr[j] = (hpr[j] - xr[2 * H + j]) * xr[j] + xr[2 * H + j];  /* h_t */
            if (c->mask && !c->mask[(size_t)t * B + r0 + r]) memcpy(hr, hpr, sizeof(real) * H);
        }
    }
    free(u);
    free(hp_masked);
    free(Uhp.packed);
    free(Up.packed);
}

static void KERNEL(gru_backward)(const void *call, int r0, int r1) {
    const struct rnn_call *c = (const struct rnn_call *)call;
    const int T = c->T, B = c->B, H = c->H, R = r1 - r0, G = 3 * H;
    const real *rm = (const real *)c->rec_mask, *hs = (const real *)c->hs, *gates = (const real *)c->gates;
    const real *rec_h = (const real *)c->aux, *dh_seq = (const real *)c->dh_seq, *UT = (const real *)c->UT;
    real *dh = (real *)c->dh + (size_t)r0 * H;                                           /* (R, H) carried */
    const int after = c->reset_after, act = c->act, ract = c->ract;
    /* reset_after: U^T (3H x H) whole; otherwise U_zr^T (2H x H) and U_h^T (H x H) apart */
    struct operand UTp = operand(after ? G : 2 * H, H, UT, H, (long)R * T);
    struct operand UhTp = operand(H, H, UT + (size_t)2 * H * H, H, after ? 0 : (long)R * T);
    real *g = (real *)malloc(sizeof(real) * R * H), *dhp = (real *)malloc(sizeof(real) * R * H);
    real *drhp = after ? NULL : (real *)malloc(sizeof(real) * R * H);                    /* dL/d(r * hp) */
    real *skip = c->mask ? (real *)malloc(sizeof(real) * R * H) : NULL;
    for (int t = T - 1; t >= 0; t--) {
        const size_t row0 = (size_t)t * B + r0;
        real *dx = (real *)c->dz + row0 * G;                                               /* (R, 3H) */
        real *du = after ? (real *)c->dr + row0 * G : NULL;                                /* (R, 3H) */
        for (int r = 0; r < R; r++) {
            real *gr = g + (size_t)r * H, *dxr = dx + (size_t)r * G;
            const real *zr = gates + (row0 + r) * G, *hpr = hs + (row0 + r) * H;            /* h_{t-1} = hs[t] */
            for (int j = 0; j < H; j++) gr[j] = dh[(size_t)r * H + j] + (dh_seq ? dh_seq[(row0 + r) * H + j] : 0);
            if (c->mask) {
                int real_step = c->mask[row0 + r];
                for (int j = 0; j < H; j++) {                   /* masked: g goes straight to h_{t-1} */
                    skip[(size_t)r * H + j] = real_step ? 0 : gr[j];
                    if (!real_step) gr[j] = 0;
                }
            }
            const real *z = zr, *hh = zr + 2 * H;
            for (int j = 0; j < H; j++) {
                dxr[2 * H + j] = gr[j] * ((real)1 - z[j]) * derivative(act, hh[j]);       /* da_h */
                dxr[j] = gr[j] * (hpr[j] - hh[j]) * derivative(ract, z[j]);               /* dz */
            }
            if (after) {
                const real *uh = rec_h + (row0 + r) * H, *rg = zr + H;
                real *dur = du + (size_t)r * G;
                for (int j = 0; j < H; j++) {
                    dxr[H + j] = dxr[2 * H + j] * uh[j] * derivative(ract, rg[j]);          /* dr */
                    dur[j] = dxr[j];
                    dur[H + j] = dxr[H + j];
                    dur[2 * H + j] = dxr[2 * H + j] * rg[j];                               /* d u_h */
                }
            }
        }
        for (int i = 0; i < R * H; i++) dhp[i] = 0;
        if (after) {
            gemm_acc(R, H, G, du, G, &UTp, dhp, H);                                       /* du U^T */
        } else {
            for (int i = 0; i < R * H; i++) drhp[i] = 0;
            gemm_acc(R, H, H, dx + 2 * H, G, &UhTp, drhp, H);                             /* da_h U_h^T */
            for (int r = 0; r < R; r++) {
                real *dxr = dx + (size_t)r * G;
                const real *rg = gates + (row0 + r) * G + H, *hpr = hs + (row0 + r) * H;
                for (int j = 0; j < H; j++) {
                    real hp = rm ? hpr[j] * rm[(size_t)(r0 + r) * H + j] : hpr[j];
                    dxr[H + j] = drhp[(size_t)r * H + j] * hp * derivative(ract, rg[j]);   /* dr */
                    dhp[(size_t)r * H + j] = drhp[(size_t)r * H + j] * rg[j];
                }
            }
            gemm_acc(R, H, 2 * H, dx, G, &UTp, dhp, H);                                   /* + [dz, dr] U_zr^T */
        }
        for (int r = 0; r < R; r++) {
            const real *z = gates + (row0 + r) * G;
            real *dhr = dh + (size_t)r * H, *dhpr = dhp + (size_t)r * H, *gr = g + (size_t)r * H;
            for (int j = 0; j < H; j++) {
                real v = rm ? dhpr[j] * rm[(size_t)(r0 + r) * H + j] : dhpr[j];
                dhr[j] = v + gr[j] * z[j];                                                 /* dL/dh_{t-1} */
                if (c->mask) dhr[j] += skip[(size_t)r * H + j];
            }
        }
    }
    free(skip);
    free(drhp);
    free(dhp);
    free(g);
    free(UhTp.packed);
    free(UTp.packed);
}
