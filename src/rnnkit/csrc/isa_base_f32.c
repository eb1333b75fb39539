/* The kernels for base, float (see cells.h). */


#define ISA_NAME "base"
#define VBYTES 16
typedef float real;
#define REAL_IS_FLOAT 1
#define KERNEL(name) name##_base_f32
#include "cells.h"

