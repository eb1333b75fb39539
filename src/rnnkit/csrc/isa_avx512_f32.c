/* The kernels for avx512, float (see cells.h). */
#if defined(__x86_64__) || defined(__i386__)
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,fma")
#define ISA_NAME "avx512"
#define VBYTES 64
typedef float real;
#define REAL_IS_FLOAT 1
#define KERNEL(name) name##_avx512_f32
#include "cells.h"
#endif
