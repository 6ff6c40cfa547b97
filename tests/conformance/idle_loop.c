// A reversed loop whose body does not read its index (found by the C fuzzer: poplar emits
// the index as an unused C++ variable, which g++ -Werror rejects).

#include <math.h>

#ifndef N
#define N 2
#endif
#define M 3
void idle(const float a[N], float o[N]) {
#pragma omp target map(to: a[0:N]) map(from: o[0:N])
#pragma omp parallel for
  for (int i = 0; i < N; i++) {
    float acc = a[i];
    for (int k = M - 1; k >= 0; k--) acc = fminf(acc, 1.0f);
    o[i] = acc;
  }
}
