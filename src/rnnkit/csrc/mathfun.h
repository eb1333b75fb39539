/* The activations, applied in place to a row of n numbers, in loops the compiler vectorises.

   float:  tanh(x) = x P(x^2) / Q(x^2) on [-9, 9] (beyond, tanh rounds to +-1 in float32), a rational
           approximation fitted for rnnkit (relative error 2e-8 in exact arithmetic, at most 6 ulp
           evaluated in float32); no libm call, so the loop runs in SIMD registers. A NaN stays NaN.
   double: libm's tanh, element by element: the float64 path is the exact one, not the fast one.
   Both:   sigmoid(x) = (1 + tanh(x / 2)) / 2, as rnnkit's NumPy activations compute it.

   The backward helpers take the activation's output y, as the NumPy layers do:
   tanh' = 1 - y^2, sigmoid' = y (1 - y), relu' = [y > 0]. */

#include <math.h>

enum activation { ACT_LINEAR = 0, ACT_TANH = 1, ACT_SIGMOID = 2, ACT_RELU = 3 };

static inline real scalar_tanh(real x) {
#if defined(REAL_IS_FLOAT)
    const real c = 9.0f;
    x = x < -c ? -c : (x > c ? c : x);                 /* comparisons with NaN are false: NaN passes */
    real s = x * x;
    real p = 1.3354498507034407e-08f;
    p = p * s + 2.0608958558366013e-05f;
    p = p * s + 3.4955803143085972e-03f;
    p = p * s + 1.3381018956999635e-01f;
    p = p * s + 9.9999997944685040e-01f;
    real q = 7.7764898298235410e-07f;
    q = q * s + 3.2856222515998876e-04f;
    q = q * s + 2.5876952155104870e-02f;
    q = q * s + 4.6714334544745800e-01f;
    q = q * s + 1.0f;
    return x * p / q;
#else
    return tanh(x);
#endif
}

static inline void apply_tanh(real *x, int n) {
    for (int i = 0; i < n; i++) x[i] = scalar_tanh(x[i]);
}

static inline void apply_sigmoid(real *x, int n) {
    for (int i = 0; i < n; i++) x[i] = (real)0.5 * ((real)1 + scalar_tanh((real)0.5 * x[i]));
}

static inline void apply_relu(real *x, int n) {
    for (int i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : (x[i] != x[i] ? x[i] : 0);   /* NaN stays NaN */
}

static inline void apply_activation(int act, real *x, int n) {
    switch (act) {
        case ACT_TANH: apply_tanh(x, n); break;
        case ACT_SIGMOID: apply_sigmoid(x, n); break;
        case ACT_RELU: apply_relu(x, n); break;
        default: break;                                /* linear */
    }
}

/* act'(x) written with the output y = act(x) */
static inline real derivative(int act, real y) {
    switch (act) {
        case ACT_TANH: return (real)1 - y * y;
        case ACT_SIGMOID: return y * ((real)1 - y);
        case ACT_RELU: return (real)(y > 0);
        default: return 1;
    }
}

/* d[i] *= act'(.) written with the output y[i] */
static inline void times_derivative(int act, real *d, const real *y, int n) {
    switch (act) {
        case ACT_TANH: for (int i = 0; i < n; i++) d[i] *= (real)1 - y[i] * y[i]; break;
        case ACT_SIGMOID: for (int i = 0; i < n; i++) d[i] *= y[i] * ((real)1 - y[i]); break;
        case ACT_RELU: for (int i = 0; i < n; i++) d[i] *= (real)(y[i] > 0); break;
        default: break;
    }
}
