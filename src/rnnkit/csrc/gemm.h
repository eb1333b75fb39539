/* C += A B for the products of the time loop: C (m x n), A (m x k) row-major, B packed.

   B is a recurrent kernel (U, or U^T for backward), the same at every step, so a call packs it
   once (pack_b): column block by column block, each block NR columns wide and stored k rows of NR
   contiguous numbers, the last block padded with zeros. The register tile is MR rows of C by NV
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

/* MR full rows: the accumulators live in registers for the whole k loop */
static inline void tile_full(int k, const real *A, int lda, const real *Bp, real *C, int ldc, int w) {
    vec c[MR][NV];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++) c[r][v] = vset1(0);
    for (int p = 0; p < k; p++, Bp += NR) {
        vec b[NV];
        for (int v = 0; v < NV; v++) b[v] = vload(Bp + v * VLEN);
        for (int r = 0; r < MR; r++) {
            vec a = vset1(A[r * lda + p]);
            for (int v = 0; v < NV; v++) c[r][v] += a * b[v];
        }
    }
    for (int r = 0; r < MR; r++) {
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

/* fewer than MR rows left: one row at a time */
static inline void tile_row(int k, const real *A, const real *Bp, real *C, int w) {
    vec c[NV];
    for (int v = 0; v < NV; v++) c[v] = vset1(0);
    for (int p = 0; p < k; p++, Bp += NR) {
        vec a = vset1(A[p]);
        for (int v = 0; v < NV; v++) c[v] += a * vload(Bp + v * VLEN);
    }
    real tmp[NR];
    for (int v = 0; v < NV; v++) vstore(tmp + v * VLEN, c[v]);
    for (int j = 0; j < w; j++) C[j] += tmp[j];
}

static void gemm_acc(int m, int n, int k, const real *A, int lda, const real *Bp, real *C, int ldc) {
    for (int j0 = 0, block = 0; j0 < n; j0 += NR, block++) {
        const real *panel = Bp + (size_t)block * k * NR;
        int w = n - j0 < NR ? n - j0 : NR;
        int i = 0;
        for (; i + MR <= m; i += MR) tile_full(k, A + (size_t)i * lda, lda, panel, C + (size_t)i * ldc + j0, ldc, w);
        for (; i < m; i++) tile_row(k, A + (size_t)i * lda, panel, C + (size_t)i * ldc + j0, w);
    }
}
