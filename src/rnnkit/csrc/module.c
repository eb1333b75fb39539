/* rnnkit._kernels: the thin layer between Python and the kernels.

   run(calls) takes a list of calls, each a dict of the fields of `struct rnn_call` (kernels.h)
   plus "kind" ("simple_rnn_forward", "lstm_backward", ...): NumPy arrays as buffers (checked
   here: C-contiguous, the right float type and exactly the size the call implies, so a kernel
   never reads or writes outside them) and integers. All calls of one run go to the thread pool
   together (a Bidirectional layer's two directions run at once), with the GIL released.

   The instruction set is chosen once at import, the best the CPU has (AVX-512, AVX2 + FMA, or
   the portable baseline); set_isa() forces one, for the tests, which also run "wide": the AVX-512
   build's code compiled for AVX2, so that its 64-byte vector logic is checked on any AVX2 CPU. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <unistd.h>

#include "kernels.h"
#include "pool.h"

extern const struct kernel_table table_base_f32, table_base_f64;
#if defined(__x86_64__) || defined(__i386__)
extern const struct kernel_table table_avx2_f32, table_avx2_f64, table_avx512_f32, table_avx512_f64;
extern const struct kernel_table table_wide_f32, table_wide_f64;
#endif

static const struct kernel_table *active_f32 = &table_base_f32, *active_f64 = &table_base_f64;

static int cpu_supports(const char *isa) {
    if (strcmp(isa, "base") == 0) return 1;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (strcmp(isa, "avx2") == 0 || strcmp(isa, "wide") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (strcmp(isa, "avx512") == 0)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#endif
    return 0;
}

static int use_isa(const char *isa) {
    if (!cpu_supports(isa)) return 0;
#if defined(__x86_64__) || defined(__i386__)
    if (strcmp(isa, "avx512") == 0) { active_f32 = &table_avx512_f32; active_f64 = &table_avx512_f64; return 1; }
    if (strcmp(isa, "avx2") == 0) { active_f32 = &table_avx2_f32; active_f64 = &table_avx2_f64; return 1; }
    if (strcmp(isa, "wide") == 0) { active_f32 = &table_wide_f32; active_f64 = &table_wide_f64; return 1; }
#endif
    active_f32 = &table_base_f32;
    active_f64 = &table_base_f64;
    return 1;
}

/* -- one call: its fields, read from a dict ----------------------------------------------------- */

enum kind { SIMPLE_RNN_FORWARD, SIMPLE_RNN_BACKWARD, LSTM_FORWARD, LSTM_BACKWARD, GRU_FORWARD, GRU_BACKWARD,
            N_KINDS };
static const char *kind_names[N_KINDS] = {"simple_rnn_forward", "simple_rnn_backward", "lstm_forward",
                                          "lstm_backward", "gru_forward", "gru_backward"};
static const int kind_gates[N_KINDS] = {1, 1, 4, 4, 3, 3};
/* the arrays each kind must be given (the others are optional or unused) */
static const char *kind_required[N_KINDS] = {
    "xw U hs", "UT hs dh dz",
    "U hs cs gates aux", "UT hs cs gates aux dh dc dz",
    "U hs gates", "UT hs gates dh dz",
};

struct parsed {
    struct rnn_call call;
    enum kind kind;
    int is_double;
    Py_buffer views[16];
    int n_views;
};

static int get_int(PyObject *d, const char *key, int fallback, int *out) {
    PyObject *v = PyDict_GetItemString(d, key);
    if (v == NULL || v == Py_None) { *out = fallback; return 0; }
    long x = PyLong_AsLong(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (x < 0 || x > 1 << 30) { PyErr_Format(PyExc_ValueError, "kernel call: %s=%ld is out of range", key, x); return -1; }
    *out = (int)x;
    return 0;
}

/* the buffer under `key`, checked to hold exactly `items` numbers of the call's type */
static int get_array(struct parsed *p, PyObject *d, const char *key, Py_ssize_t items, int writable, int bytes,
                     const void **out) {
    PyObject *v = PyDict_GetItemString(d, key);
    *out = NULL;
    const char *kind_needs = kind_required[p->kind];
    const char *found = strstr(kind_needs, key);
    int required = found && (found == kind_needs || found[-1] == ' ') &&
                   (found[strlen(key)] == ' ' || found[strlen(key)] == '\0');
    if (v == NULL || v == Py_None) {
        if (required) { PyErr_Format(PyExc_ValueError, "kernel call %s: array %s is required", kind_names[p->kind], key); return -1; }
        return 0;
    }
    Py_buffer *view = &p->views[p->n_views];
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(v, view, flags) < 0) return -1;
    p->n_views++;
    char fmt = view->format ? view->format[strlen(view->format) - 1] : 'B';
    Py_ssize_t itemsize = bytes ? 1 : (p->is_double ? 8 : 4);
    int format_ok = bytes ? (fmt == '?' || fmt == 'B' || fmt == 'b') : (fmt == (p->is_double ? 'd' : 'f'));
    if (!format_ok || view->itemsize != itemsize) {
        PyErr_Format(PyExc_TypeError, "kernel call %s: array %s has format '%s', expected %s", kind_names[p->kind],
                     key, view->format ? view->format : "B", bytes ? "bool" : (p->is_double ? "float64" : "float32"));
        return -1;
    }
    if (view->len != items * itemsize) {
        PyErr_Format(PyExc_ValueError, "kernel call %s: array %s holds %zd numbers, expected %zd",
                     kind_names[p->kind], key, view->len / itemsize, items);
        return -1;
    }
    *out = view->buf;
    return 0;
}

static int parse_call(PyObject *d, struct parsed *p) {
    memset(p, 0, sizeof(*p));
    if (!PyDict_Check(d)) { PyErr_SetString(PyExc_TypeError, "kernel call: expected a dict"); return -1; }
    PyObject *k = PyDict_GetItemString(d, "kind");
    const char *kind = k ? PyUnicode_AsUTF8(k) : NULL;
    if (kind == NULL) { if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "kernel call: no kind"); return -1; }
    int found = -1;
    for (int i = 0; i < N_KINDS; i++)
        if (strcmp(kind, kind_names[i]) == 0) found = i;
    if (found < 0) { PyErr_Format(PyExc_ValueError, "kernel call: unknown kind '%s'", kind); return -1; }
    p->kind = (enum kind)found;
    struct rnn_call *c = &p->call;
    if (get_int(d, "T", 0, &c->T) || get_int(d, "B", 0, &c->B) || get_int(d, "H", 0, &c->H) ||
        get_int(d, "act", 1, &c->act) || get_int(d, "ract", 2, &c->ract) || get_int(d, "keep", 1, &c->keep) ||
        get_int(d, "reset_after", 1, &c->reset_after) || get_int(d, "double", 0, &p->is_double))
        return -1;
    if (c->T < 1 || c->B < 1 || c->H < 1) { PyErr_SetString(PyExc_ValueError, "kernel call: T, B, H must be >= 1"); return -1; }
    const Py_ssize_t T = c->T, B = c->B, H = c->H, G = kind_gates[p->kind];
    const Py_ssize_t steps_kept = c->keep ? T + 1 : 2;
    if (get_array(p, d, "xw", T * B * G * H, 0, 0, &c->xw) || get_array(p, d, "U", H * G * H, 0, 0, &c->U) ||
        get_array(p, d, "UT", G * H * H, 0, 0, &c->UT) || get_array(p, d, "rec_bias", G * H, 0, 0, &c->rec_bias) ||
        get_array(p, d, "mask", T * B, 0, 1, (const void **)&c->mask) ||
        get_array(p, d, "rec_mask", B * H, 0, 0, &c->rec_mask) ||
        get_array(p, d, "hs", steps_kept * B * H, 1, 0, (const void **)&c->hs) ||
        get_array(p, d, "cs", steps_kept * B * H, 1, 0, (const void **)&c->cs) ||
        get_array(p, d, "gates", T * B * G * H, 1, 0, (const void **)&c->gates) ||
        get_array(p, d, "aux", T * B * H, 1, 0, (const void **)&c->aux) ||
        get_array(p, d, "dh_seq", T * B * H, 0, 0, &c->dh_seq) ||
        get_array(p, d, "dh", B * H, 1, 0, (const void **)&c->dh) ||
        get_array(p, d, "dc", B * H, 1, 0, (const void **)&c->dc) ||
        get_array(p, d, "dz", T * B * G * H, 1, 0, (const void **)&c->dz) ||
        get_array(p, d, "dr", T * B * 3 * H, 1, 0, (const void **)&c->dr))
        return -1;
    if (c->act > 3 || c->ract > 3) { PyErr_SetString(PyExc_ValueError, "kernel call: unknown activation"); return -1; }
    return 0;
}

static kernel_fn kernel_of(const struct parsed *p) {
    const struct kernel_table *t = p->is_double ? active_f64 : active_f32;
    kernel_fn table[N_KINDS] = {t->simple_rnn_forward, t->simple_rnn_backward, t->lstm_forward, t->lstm_backward,
                                t->gru_forward, t->gru_backward};
    return table[p->kind];
}

/* the rows of each block a call is split into: all of them when the call is too small to share
   (handing work to another thread costs microseconds), else up to two blocks per thread (so a thread
   slowed down by another program takes fewer), at least 8 rows each, rounded up to whole register
   tiles (6 rows, gemm.h) */
static int block_rows(const struct parsed *p, int threads) {
    const struct rnn_call *c = &p->call;
    double flops = 2.0 * c->B * (double)c->T * kind_gates[p->kind] * (double)c->H * c->H;
    if (threads <= 1 || flops < 1e6) return c->B;
    int blocks = 2 * threads, by_rows = c->B / 8;
    if (blocks > by_rows) blocks = by_rows;
    if (blocks <= 1) return c->B;
    int rows = (c->B + blocks - 1) / blocks;
    rows = (rows + 5) / 6 * 6;
    return rows < c->B ? rows : c->B;
}

static PyObject *run(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *calls;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &calls)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(calls);
    if (n < 1 || n > 64) { PyErr_SetString(PyExc_ValueError, "run takes 1 to 64 calls"); return NULL; }
    struct parsed *parsed = calloc((size_t)n, sizeof(struct parsed));
    struct task *tasks = NULL;
    PyObject *result = NULL;
    if (!parsed) return PyErr_NoMemory();
    Py_ssize_t i;
    for (i = 0; i < n; i++) {
        if (parse_call(PyList_GET_ITEM(calls, i), &parsed[i]) < 0) { n = i + 1; goto out; }
        if (!kernel_of(&parsed[i])) { PyErr_Format(PyExc_ValueError, "no kernel for %s", kind_names[parsed[i].kind]); n = i + 1; goto out; }
    }
    int threads = pool_threads(), count = 0;
    for (i = 0; i < n; i++) {
        int rows = block_rows(&parsed[i], threads);
        count += (parsed[i].call.B + rows - 1) / rows;
    }
    tasks = calloc((size_t)count, sizeof(struct task));
    if (!tasks) { PyErr_NoMemory(); goto out; }
    count = 0;
    for (i = 0; i < n; i++) {
        int rows = block_rows(&parsed[i], threads), B = parsed[i].call.B;
        for (int r0 = 0; r0 < B; r0 += rows)
            tasks[count++] = (struct task){kernel_of(&parsed[i]), &parsed[i].call, r0, r0 + rows < B ? r0 + rows : B};
    }
    Py_BEGIN_ALLOW_THREADS
    pool_run(tasks, count);
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
out:
    for (i = 0; i < n; i++)
        for (int v = 0; v < parsed[i].n_views; v++) PyBuffer_Release(&parsed[i].views[v]);
    free(parsed);
    free(tasks);
    return result;
}

/* -- the large products ----------------------------------------------------------------------- */

/* a 2-D float array whose rows are contiguous (a column slice of a matrix will do): its data, rows,
   columns and row stride in numbers */
static int get_matrix(PyObject *obj, Py_buffer *view, int writable, int *is_double, const char *name,
                      int *rows, int *cols, int *ld) {
    if (PyObject_GetBuffer(obj, view, PyBUF_STRIDES | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    char fmt = view->format ? view->format[strlen(view->format) - 1] : 'B';
    int dbl = fmt == 'd';
    if ((fmt != 'f' && fmt != 'd') || view->ndim != 2 || view->strides[1] != view->itemsize ||
        view->strides[0] % view->itemsize != 0 || view->strides[0] < view->shape[1] * view->itemsize) {
        PyErr_Format(PyExc_ValueError, "matmul: %s must be a 2-D float32 or float64 array with contiguous rows", name);
        PyBuffer_Release(view);
        return -1;
    }
    if (*is_double >= 0 && *is_double != dbl) {
        PyErr_Format(PyExc_TypeError, "matmul: %s has another float type than A", name);
        PyBuffer_Release(view);
        return -1;
    }
    *is_double = dbl;
    *rows = (int)view->shape[0];
    *cols = (int)view->shape[1];
    *ld = (int)(view->strides[0] / view->itemsize);
    return 0;
}

static PyObject *matmul(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *a, *b, *out;
    int trans_a, trans_b, accumulate;
    if (!PyArg_ParseTuple(args, "OOOppp", &a, &b, &out, &trans_a, &trans_b, &accumulate)) return NULL;
    Py_buffer va, vb, vc;
    int dbl = -1, ar, ac, br, bc, cr, cc;
    struct mm_call c;
    memset(&c, 0, sizeof(c));
    if (get_matrix(a, &va, 0, &dbl, "A", &ar, &ac, &c.lda) < 0) return NULL;
    if (get_matrix(b, &vb, 0, &dbl, "B", &br, &bc, &c.ldb) < 0) { PyBuffer_Release(&va); return NULL; }
    if (get_matrix(out, &vc, 1, &dbl, "C", &cr, &cc, &c.ldc) < 0) {
        PyBuffer_Release(&va); PyBuffer_Release(&vb); return NULL;
    }
    c.m = trans_a ? ac : ar;
    c.k = trans_a ? ar : ac;
    c.n = trans_b ? br : bc;
    int kb = trans_b ? bc : br;
    PyObject *result = NULL;
    if (kb != c.k || cr != c.m || cc != c.n) {
        PyErr_Format(PyExc_ValueError, "matmul: shapes do not fit: op(A) is %d x %d, op(B) %d x %d, C %d x %d",
                     c.m, c.k, kb, c.n, cr, cc);
        goto out;
    }
    c.A = va.buf; c.B = vb.buf; c.C = vc.buf;
    c.trans_a = trans_a; c.trans_b = trans_b; c.accumulate = accumulate;
    if (c.m == 0 || c.n == 0) { result = Py_None; Py_INCREF(result); goto out; }
    kernel_fn fn = (dbl ? active_f64 : active_f32)->matmul;
    /* split C where it is larger: rows in whole tiles of 6, columns in blocks of 64 (whole panels on
       every instruction set); one task when the product is too small to share */
    int threads = pool_threads();
    c.split_cols = c.n > c.m;
    int size = c.split_cols ? c.n : c.m, unit = c.split_cols ? 64 : 6;
    int blocks = (2.0 * c.m * c.n * (double)c.k < 4e6 || threads <= 1) ? 1 : 2 * threads;
    int max_blocks = (size + unit - 1) / unit;
    if (blocks > max_blocks) blocks = max_blocks;
    int step = ((size + blocks - 1) / blocks + unit - 1) / unit * unit;
    struct task tasks[512];
    int count = 0;
    for (int r0 = 0; r0 < size && count < 512; r0 += step)
        tasks[count++] = (struct task){fn, &c, r0, r0 + step < size ? r0 + step : size};
    Py_BEGIN_ALLOW_THREADS
    pool_run(tasks, count);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
out:
    PyBuffer_Release(&va);
    PyBuffer_Release(&vb);
    PyBuffer_Release(&vc);
    return result;
}

static PyObject *set_isa(PyObject *self, PyObject *args) {
    (void)self;
    const char *isa;
    if (!PyArg_ParseTuple(args, "s", &isa)) return NULL;
    return PyBool_FromLong(use_isa(isa));
}

static PyObject *set_threads(PyObject *self, PyObject *args) {
    (void)self;
    int threads;
    if (!PyArg_ParseTuple(args, "i", &threads)) return NULL;
    if (threads < 1 || threads > 256) { PyErr_SetString(PyExc_ValueError, "threads must be in [1, 256]"); return NULL; }
    return PyLong_FromLong(pool_start(threads));
}

static PyObject *info(PyObject *self, PyObject *unused) {
    (void)self; (void)unused;
    PyObject *available = PyList_New(0);
    const char *all[] = {"avx512", "avx2", "wide", "base"};
    for (int i = 0; i < 4; i++)
        if (cpu_supports(all[i])) {
            PyObject *s = PyUnicode_FromString(all[i]);
            PyList_Append(available, s);
            Py_DECREF(s);
        }
    return Py_BuildValue("{s:s,s:N,s:i}", "isa", active_f32->isa, "available", available, "threads", pool_threads());
}

static PyMethodDef methods[] = {
    {"run", run, METH_VARARGS, "run(calls): run kernel calls (dicts) in the thread pool, the GIL released."},
    {"matmul", matmul, METH_VARARGS,
     "matmul(A, B, C, trans_a, trans_b, accumulate): C (+)= op(A) op(B) in the thread pool (2-D float arrays)."},
    {"set_isa", set_isa, METH_VARARGS, "set_isa(name): use 'avx512', 'avx2', 'wide' or 'base'; False if the CPU lacks it."},
    {"set_threads", set_threads, METH_VARARGS, "set_threads(n): grow the pool to n threads (the caller included)."},
    {"info", info, METH_NOARGS, "info(): the active instruction set, those the CPU has, and the thread count."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", "rnnkit's compiled recurrent core.", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__kernels(void) {
    if (!use_isa("avx512") && !use_isa("avx2")) use_isa("base");
    return PyModule_Create(&module);
}
