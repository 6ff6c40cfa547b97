// Dense matrix product c = a @ b in float (the same kernel as examples/gemm.k), offloaded with
// OpenMP: the league of teams shares the loop over the elements of c, and the number of teams is
// left to the target (kernelc makes one data-parallel task that each target partitions itself;
// with num_teams(T) it would make T tasks, one block of rows each). Each element is a
// left-to-right sum over k, which kernelc recognises as a matrix product.
// Sizes: -DM=... -DN=... -DK=... (kernelc: -D M=... and so on).

#ifndef M
#define M 256
#endif
#ifndef N
#define N 256
#endif
#ifndef K
#define K 256
#endif

void gemm(const float a[M][K], const float b[K][N], float c[M][N]) {
#pragma omp target teams distribute parallel for collapse(2) \
    map(to: a[0:M][0:K], b[0:K][0:N]) map(from: c[0:M][0:N])
  for (int i = 0; i < M; i++) {
    for (int j = 0; j < N; j++) {
      float acc = 0.0f;
      for (int k = 0; k < K; k++) {
        acc += a[i][k] * b[k][j];
      }
      c[i][j] = acc;
    }
  }
}
