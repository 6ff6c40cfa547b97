// The task-graph shape of the ANL study of OpenMP on Graphcore IPUs: a parallel region of 4
// threads in which every thread creates two tasks with different bodies, each reading the
// thread's slice of a shared input v1. kernelc builds one compute step of 8 task instances
// (4 of each body) with no dependencies among them.
//
// sums[t] = sum of v1[t*CH .. t*CH + CH), peaks[t] = max of the same slice.
// CH (the slice length) is a size: -DCH=... / -D CH=... . The thread count is fixed at 4: it
// decides the shape of the task graph, so it is a compile-time constant, not a size.

#include <math.h>
#include <omp.h>

#define NT 4
#ifndef CH
#define CH 16
#endif

void pipeline(const float v1[NT * CH], float sums[NT], float peaks[NT]) {
#pragma omp target map(to: v1[0:NT * CH]) map(from: sums[0:NT], peaks[0:NT])
#pragma omp parallel num_threads(NT)
  {
    int tid = omp_get_thread_num();
#pragma omp task depend(in: v1[tid * CH:CH]) depend(out: sums[tid])
    {
      float s = 0.0f;
      for (int i = 0; i < CH; i++) {
        s += v1[tid * CH + i];
      }
      sums[tid] = s;
    }
#pragma omp task depend(in: v1[tid * CH:CH]) depend(out: peaks[tid])
    {
      float m = v1[tid * CH];
      for (int i = 1; i < CH; i++) {
        m = fmaxf(m, v1[tid * CH + i]);
      }
      peaks[tid] = m;
    }
  }
}
