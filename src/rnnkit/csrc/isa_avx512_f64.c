/* The kernels for avx512, double (see cells.h). */
#if defined(__x86_64__) || defined(__i386__)
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,fma")
#define ISA_NAME "avx512"
#define VBYTES 64
typedef double real;

#define KERNEL(name) name##_avx512_f64
#include "cells.h"
#endif
