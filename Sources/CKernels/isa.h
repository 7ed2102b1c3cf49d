#ifndef ADVPRUNE_ISA_H
#define ADVPRUNE_ISA_H

#include "ckernels.h"

// Per-CPU copies of a hot loop, chosen at run time by the CPU's features (isa.c). Not
// target_clones: its "arch=haswell" clone is picked by the CPU *model* (Intel Haswell only), so
// every other AVX2 machine (AMD EPYC, later Intel cores) ran the baseline SSE2 copy, and its
// "arch=x86-64-v3" test reads a feature word whose layout differs between compiler-rt and libgcc.
//
// ADVPRUNE_CLONES(ret, name, params, args, RETURN) defines `ret name params` from
// `static inline __attribute__((always_inline)) ret name##_body params`, compiled three times
// (AVX-512, AVX2 + FMA, baseline x86-64); RETURN is `return`, or empty for a void function.
#if defined(__x86_64__)
#define ADVPRUNE_CLONES(ret, name, params, args, RETURN)                        \
  __attribute__((target("avx512f"))) static ret name##_avx512 params { RETURN name##_body args; } \
  __attribute__((target("avx2,fma"))) static ret name##_avx2 params { RETURN name##_body args; }  \
  static ret name##_baseline params { RETURN name##_body args; }                \
  ret name params {                                                             \
    switch (advprune_isa()) {                                                   \
      case ADVPRUNE_ISA_AVX512: RETURN name##_avx512 args; break;               \
      case ADVPRUNE_ISA_AVX2: RETURN name##_avx2 args; break;                   \
      default: RETURN name##_baseline args; break;                              \
    }                                                                           \
  }
#else
#define ADVPRUNE_CLONES(ret, name, params, args, RETURN) \
  ret name params { RETURN name##_body args; }
#endif

#endif
