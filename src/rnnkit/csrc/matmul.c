/* The large products outside the time loop, on the kernels' own threads:
       forward:   x W           (T*B x D) (D x G*H)       the input projection of every step
       backward:  x^T dz, h^T dz                          the weight gradients
                  dz W^T                                  the gradient of the input
   Doing them here rather than through NumPy's BLAS keeps one thread pool busy: BLAS worker threads
   go on spinning for a while after each product and would compete with the time loop's threads.

   C = op(A) op(B) (or +=), split over rows or columns of C (the call says which) for the pool.
   Blocked for the caches, as in the GotoBLAS scheme: C's columns are taken NC at a time and k
   KC at a time; for each such block op(B) (KC x NC, up to 2 MB, in L3) is packed into panels of
   NR columns (16 KB each), and each block of MC rows of op(A) into strips of MR rows (k-major, so
   a tile's broadcasts read consecutive numbers; MC x KC stays in L2); a tile runs one strip
   against one panel, the panel in L1 while every strip of the block passes over it. Packing
   reads A and B along their rows, as stored. */

#define KC (16384 / (NR * (int)sizeof(real)))          /* rows of a panel of 16 KB */
#define NC ((2 << 20) / (KC * (int)sizeof(real)))       /* columns of C per block: 2 MB of packed B */
#define MC (24 * MR)                                    /* rows of C per block */

/* each pool thread's packing buffers, grown on demand and kept (at most 2 MB and 144 KB) */
static __thread real *KERNEL(scratch);
static __thread size_t KERNEL(scratch_size);

static real *KERNEL(get_scratch)(size_t size) {
    if (size > KERNEL(scratch_size)) {
        free(KERNEL(scratch));
        KERNEL(scratch) = (real *)malloc(sizeof(real) * size);
        KERNEL(scratch_size) = KERNEL(scratch) ? size : 0;
    }
    return KERNEL(scratch);
}

/* rows [p0, p0 + kc) and columns [j0, j1) of op(B) into panels of NR columns, zero padded:
   panel[b][p][0..NR) */
static void KERNEL(pack_b_block)(const real *B, int ldb, int trans_b, int p0, int kc, int j0, int j1,
                                 real *panels) {
    int count = (j1 - j0 + NR - 1) / NR;
    if (!trans_b) {                                   /* B stored k x n: copy along each row of B */
        for (int p = 0; p < kc; p++) {
            const real *row = B + (size_t)(p0 + p) * ldb;
            for (int q = j0; q < j1; q += 64 / (int)sizeof(real))   /* rows of B are far apart: ask early */
                __builtin_prefetch(row + (size_t)4 * ldb + q);
            for (int b = 0; b < count; b++) {
                int j = j0 + b * NR, w = j1 - j < NR ? j1 - j : NR;
                real *dst = panels + ((size_t)b * kc + p) * NR;
                if (w == NR) {
                    for (int v = 0; v < NV; v++) vstore(dst + v * VLEN, vload(row + j + v * VLEN));
                } else {
                    for (int q = 0; q < w; q++) dst[q] = row[j + q];
                    for (int q = w; q < NR; q++) dst[q] = 0;
                }
            }
        }
    } else {                                          /* B stored n x k: op(B)[p][j] = B[j][p], read along j's row */
        for (int b = 0; b < count; b++) {
            int j = j0 + b * NR, w = j1 - j < NR ? j1 - j : NR;
            real *panel = panels + (size_t)b * kc * NR;
            for (int q = 0; q < w; q++) {
                const real *row = B + (size_t)(j + q) * ldb + p0;
                for (int p = 0; p < kc; p++) panel[p * NR + q] = row[p];
            }
            for (int q = w; q < NR; q++)
                for (int p = 0; p < kc; p++) panel[p * NR + q] = 0;
        }
    }
}

/* rows [i0, i1) and columns [p0, p0 + kc) of op(A) into strips of MR rows: strip[p][r] */
static void KERNEL(pack_a_block)(const real *A, int lda, int trans_a, int p0, int kc, int i0, int i1,
                                 real *strips) {
    for (int i = i0; i < i1; i += MR) {
        int mr = i1 - i < MR ? i1 - i : MR;
        real *strip = strips + (size_t)(i - i0) * kc;
        if (trans_a && mr == MR) {                    /* A stored k x m: op(A)[i][p] = A[p][i] */
            for (int p = 0; p < kc; p++) {
                const real *row = A + (size_t)(p0 + p) * lda + i;
                for (int r = 0; r < MR; r++) strip[p * MR + r] = row[r];
            }
        } else if (trans_a) {
            for (int p = 0; p < kc; p++) {
                const real *row = A + (size_t)(p0 + p) * lda + i;
                for (int r = 0; r < mr; r++) strip[p * mr + r] = row[r];
            }
        } else {
            for (int r = 0; r < mr; r++) {
                const real *row = A + (size_t)(i + r) * lda + p0;
                if (i + MR + r < i1)                  /* the next strip's row, while this one is copied */
                    for (int p = 0; p < kc; p += 64 / (int)sizeof(real)) __builtin_prefetch(row + (size_t)MR * lda + p);
                for (int p = 0; p < kc; p++) strip[p * mr + r] = row[p];
            }
        }
    }
}

static void KERNEL(matmul)(const void *call, int r0, int r1) {
    const struct mm_call *c = (const struct mm_call *)call;
    const real *A = (const real *)c->A, *B = (const real *)c->B;
    real *C = (real *)c->C;
    int i0 = 0, i1 = c->m, j0 = 0, j1 = c->n;             /* this task's part of C */
    if (c->split_cols) { j0 = r0; j1 = r1; } else { i0 = r0; i1 = r1; }
    if (!c->accumulate)
        for (int i = i0; i < i1; i++) memset(C + (size_t)i * c->ldc + j0, 0, sizeof(real) * (j1 - j0));
    if (!c->trans_a && !c->trans_b && i1 - i0 <= MR) {   /* a few rows: packing B would cost more */
        gemm_direct(i1 - i0, j1 - j0, c->k, A + (size_t)i0 * c->lda, c->lda, B + j0, c->ldb,
                    C + (size_t)i0 * c->ldc + j0, c->ldc);
        return;
    }
    int width = j1 - j0 < NC ? (j1 - j0 + NR - 1) / NR * NR : NC;
    real *panels = KERNEL(get_scratch)((size_t)KC * width + (size_t)KC * MC);
    if (!panels) return;                                 /* cannot happen in practice: at most a few MB */
    real *strips = panels + (size_t)KC * width;
    for (int jb = j0; jb < j1; jb += NC) {
        int je = j1 - jb < NC ? j1 : jb + NC;
        for (int p0 = 0; p0 < c->k; p0 += KC) {
            int kc = c->k - p0 < KC ? c->k - p0 : KC;
            KERNEL(pack_b_block)(B, c->ldb, c->trans_b, p0, kc, jb, je, panels);
            for (int ib = i0; ib < i1; ib += MC) {
                int ie = i1 - ib < MC ? i1 : ib + MC;
                KERNEL(pack_a_block)(A, c->lda, c->trans_a, p0, kc, ib, ie, strips);
                for (int j = jb; j < je; j += NR) {
                    const real *panel = panels + (size_t)((j - jb) / NR) * kc * NR;
                    int w = je - j < NR ? je - j : NR;
                    for (int i = ib; i < ie; i += MR)
                        tile_rows(ie - i < MR ? ie - i : MR, kc, strips + (size_t)(i - ib) * kc, 1,
                                  ie - i < MR ? ie - i : MR, panel, C + (size_t)i * c->ldc + j, c->ldc, w);
                }
            }
        }
    }
}
