/* The kernels for avx2, double (see cells.h). */
#if defined(__x86_64__) || defined(__i386__)
#pragma GCC target("avx2,fma")
#define ISA_NAME "avx2"
#define VBYTES 32
typedef double real;

#define KERNEL(name) name##_avx2_f64
#include "cells.h"
#endif
