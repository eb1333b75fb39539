/* C += A B for the products of the time loop: C (m x n), A (m x k) row-major.

   B is a recurrent kernel (U, or U^T for backward), the same at every step, so a call packs it
   once (pack_b): column block by column block, each block NR columns wide and stored k rows of NR
   contiguous numbers, the last block padded with zeros. A call with few rows and steps (one step of
   one sequence, say) would spend more time packing than multiplying: it reads B in place instead
   (struct operand decides, gemm_acc does either). The register tile is MR rows of C by NV
   vectors (NR = NV * VLEN columns): for each k it loads NV vectors of the packed block, broadcasts
   A[r][k] for the MR rows and does MR * NV fused multiply-adds. 6 x 2 vectors use 12 of AVX2's 16
   registers; AVX-512 has 32 and takes 6 x 4. Row tiles walk down one column block at a time, so the
   block (k x NR numbers) stays in cache across the rows. */

#define MR 6
#if VBYTES == 64
#define NV 4
#else
#define NV 2
#endif
#define NR (NV * VLEN)

static inline size_t packed_size(int k, int n) { return (size_t)((n + NR - 1) / NR) * k * NR; }

/* B (k x n, row stride ldb) into column blocks of NR: Bp[block][p][0..NR) */
static void pack_b(int k, int n, const real *B, int ldb, real *Bp) {
    for (int j0 = 0; j0 < n; j0 += NR) {
        int w = n - j0 < NR ? n - j0 : NR;
        for (int p = 0; p < k; p++, Bp += NR) {
            memcpy(Bp, B + (size_t)p * ldb + j0, sizeof(real) * w);
            for (int j = w; j < NR; j++) Bp[j] = 0;
        }
    }
}

/* mr <= MR rows: the accumulators live in registers for the whole k loop. Inlined with a constant
   mr (see tile_rows), so each row count gets its own fully unrolled code. */
static inline __attribute__((always_inline)) void tile(const int mr, int k, const real *A, int ars, int acs,
                                                       const real *Bp, real *C, int ldc, int w) {
    vec c[MR][NV];
    for (int r = 0; r < mr; r++) {
        for (int v = 0; v < NV; v++) c[r][v] = vset1(0);
        __builtin_prefetch(C + (size_t)r * ldc, 1);            /* C's rows arrive while the k loop runs */
        __builtin_prefetch(C + (size_t)r * ldc + NR - 1, 1);
    }
    for (int p = 0; p < k; p++, Bp += NR, A += acs) {    /* A[r][p] is A[r * ars + p * acs] */
        vec b[NV];
        for (int v = 0; v < NV; v++) b[v] = vload(Bp + v * VLEN);
        for (int r = 0; r < mr; r++) {
            vec a = vset1(A[r * ars]);
            for (int v = 0; v < NV; v++) c[r][v] += a * b[v];
        }
    }
    for (int r = 0; r < mr; r++) {
        real *row = C + (size_t)r * ldc;
        if (w == NR) {
            for (int v = 0; v < NV; v++) vstore(row + v * VLEN, vload(row + v * VLEN) + c[r][v]);
        } else {                                       /* the last, partial column block */
            real tmp[NR];
            for (int v = 0; v < NV; v++) vstore(tmp + v * VLEN, c[r][v]);
            for (int j = 0; j < w; j++) row[j] += tmp[j];
        }
    }
}

static void tile_rows(int mr, int k, const real *A, int ars, int acs, const real *Bp, real *C, int ldc, int w) {
    switch (mr) {
        case 6: tile(6, k, A, ars, acs, Bp, C, ldc, w); break;
        case 5: tile(5, k, A, ars, acs, Bp, C, ldc, w); break;
        case 4: tile(4, k, A, ars, acs, Bp, C, ldc, w); break;
        case 3: tile(3, k, A, ars, acs, Bp, C, ldc, w); break;
        case 2: tile(2, k, A, ars, acs, Bp, C, ldc, w); break;
        default: tile(1, k, A, ars, acs, Bp, C, ldc, w); break;
    }
}

static void gemm_packed(int m, int n, int k, const real *A, int lda, const real *Bp, real *C, int ldc) {
    for (int j0 = 0, block = 0; j0 < n; j0 += NR, block++) {
        const real *panel = Bp + (size_t)block * k * NR;
        int w = n - j0 < NR ? n - j0 : NR;
        for (int i = 0; i < m; i += MR)
            tile_rows(m - i < MR ? m - i : MR, k, A + (size_t)i * lda, lda, 1, panel, C + (size_t)i * ldc + j0, ldc, w);
    }
}

/* B read in place, along its rows (the order it is stored in): for each row of C, four rows of B
   at a time are scaled and added to it, the row of C staying in L1. For products too small to be
   worth packing B (a step of one sequence, a few rows). */
static void gemm_direct(int m, int n, int k, const real *A, int lda, const real *B, int ldb, real *C, int ldc) {
    for (int i = 0; i < m; i++) {
        const real *a = A + (size_t)i * lda;
        real *c = C + (size_t)i * ldc;
        int p = 0;
        for (; p + 4 <= k; p += 4) {
            const real *b0 = B + (size_t)p * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
            vec a0 = vset1(a[p]), a1 = vset1(a[p + 1]), a2 = vset1(a[p + 2]), a3 = vset1(a[p + 3]);
            int j = 0;
            for (; j + VLEN <= n; j += VLEN)
                vstore(c + j, vload(c + j) + a0 * vload(b0 + j) + a1 * vload(b1 + j) + a2 * vload(b2 + j) +
                                  a3 * vload(b3 + j));
            for (; j < n; j++) c[j] += a[p] * b0[j] + a[p + 1] * b1[j] + a[p + 2] * b2[j] + a[p + 3] * b3[j];
        }
        for (; p < k; p++) {
            const real *b0 = B + (size_t)p * ldb;
            vec a0 = vset1(a[p]);
            int j = 0;
            for (; j + VLEN <= n; j += VLEN) vstore(c + j, vload(c + j) + a0 * vload(b0 + j));
            for (; j < n; j++) c[j] += a[p] * b0[j];
        }
    }
}

/* a right-hand operand of the step products, packed when it pays: rows * steps products at least */
struct operand {
    const real *data;           /* B in place (k x n, row stride ld) */
    int ld;
    real *packed;               /* or packed, or NULL */
};

static struct operand operand(int k, int n, const real *B, int ldb, long products) {
    struct operand b = {B, ldb, NULL};
    if (products >= 16) {
        b.packed = (real *)malloc(sizeof(real) * packed_size(k, n));
        if (b.packed) pack_b(k, n, B, ldb, b.packed);
    }
    return b;
}

static void gemm_acc(int m, int n, int k, const real *A, int lda, const struct operand *b, real *C, int ldc) {
    if (b->packed) gemm_packed(m, n, k, A, lda, b->packed, C, ldc);
    else gemm_direct(m, n, k, A, lda, b->data, b->ld, C, ldc);
}

