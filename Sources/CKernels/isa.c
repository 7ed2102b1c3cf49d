#include "isa.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int best_supported(void) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return ADVPRUNE_ISA_AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ADVPRUNE_ISA_AVX2;
#endif
  return ADVPRUNE_ISA_BASELINE;
}

int advprune_isa_supported(void) { return best_supported(); }

static int chosen = -1;

int advprune_isa_select(int requested) {
  const int best = best_supported();
  const int isa = requested < 0 || requested > best ? best : requested;
  __atomic_store_n(&chosen, isa, __ATOMIC_RELAXED);
  return isa;
}

int advprune_isa(void) {
  const int current = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
  if (current >= 0) return current;
  // ADVPRUNE_CPU_ISA=baseline|avx2|avx512 runs a lower copy (a copy the CPU lacks falls back to
  // the best it has), so the copies can be raced on one machine.
  const char *env = getenv("ADVPRUNE_CPU_ISA");
  int requested = -1;
  if (env && strcmp(env, "baseline") == 0) requested = ADVPRUNE_ISA_BASELINE;
  if (env && strcmp(env, "avx2") == 0) requested = ADVPRUNE_ISA_AVX2;
  if (env && strcmp(env, "avx512") == 0) requested = ADVPRUNE_ISA_AVX512;
  const int isa = advprune_isa_select(requested);
  if (env && *env && requested < 0)
    fprintf(stderr, "advprune: warning: ADVPRUNE_CPU_ISA=%s is not baseline, avx2 or avx512; running the %s loops\n", env,
            advprune_isa_name(isa));
  return isa;
}

const char *advprune_isa_name(int isa) {
  switch (isa) {
    case ADVPRUNE_ISA_AVX512: return "avx512";
    case ADVPRUNE_ISA_AVX2: return "avx2";
    default: return "baseline";
  }
}

void advprune_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}
