// A stand-in for libcuda's launch entry points: the audit test puts uprobes on these.
#include "testlib.h"

extern "C" {

__attribute__((noinline)) int fikit_test_launch(int x) {
  asm volatile("" ::: "memory");  // keep the call and the function body
  return x + 1;
}

__attribute__((noinline)) int fikit_test_launch_ex(int x) {
  asm volatile("" ::: "memory");
  return x + 2;
}

}  // extern "C"
