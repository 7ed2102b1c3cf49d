// The only C surface advprune touches: OpenCL, CLBlast and a CBLAS for the CPU reference.
#ifndef ADVPRUNE_COPENCL_SHIM_H
#define ADVPRUNE_COPENCL_SHIM_H
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <clblast_c.h>
#include <cblas.h>
#endif
