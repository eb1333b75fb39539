/* The kernels for base, double (see cells.h). */


#define ISA_NAME "base"
#define VBYTES 16
typedef double real;

#define KERNEL(name) name##_base_f64
#include "cells.h"

