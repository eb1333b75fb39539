/* The kernels for "wide", float: the AVX-512 build's layout (64-byte vectors, 6 x 4 register tiles)
   compiled for AVX2, which GCC lowers to pairs of 32-byte operations. Never chosen by default: it
   lets the tests run the AVX-512 build's vector-width code on CPUs without AVX-512 (see cells.h). */
#if defined(__x86_64__) || defined(__i386__)
#pragma GCC target("avx2,fma")
#define ISA_NAME "wide"
#define VBYTES 64
typedef float real;
#define REAL_IS_FLOAT 1
#define KERNEL(name) name##_wide_f32
#include "cells.h"
#endif
