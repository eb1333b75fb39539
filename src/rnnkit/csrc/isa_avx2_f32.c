/* The kernels for avx2, float (see cells.h). */
#if defined(__x86_64__) || defined(__i386__)
#pragma GCC target("avx2,fma")
#define ISA_NAME "avx2"
#define VBYTES 32
typedef float real;
#define REAL_IS_FLOAT 1
#define KERNEL(name) name##_avx2_f32
#include "cells.h"
#endif
