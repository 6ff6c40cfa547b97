// Dense matrix product c = a @ b in float (the same kernel as examples/gemm.k), offloaded with
// OpenMP: a league of 4 teams shares the loop over the elements of c (each team a block of
// rows: kernelc makes one task per team); each element is a left-to-right sum over k.
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
#pragma omp target teams distribute parallel for collapse(2) num_teams(4) \
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
