// PCA forward projection of detector frames (the same kernel as examples/pca.k):
// codes = (frames - mean) @ basis, as two OpenMP tasks linked by depend clauses: `centre`
// writes the centred frames, then `project` reads them. One thread creates both tasks (parallel
// + single, the usual shape of an OpenMP task graph); `centred` lives only on the device.
// B frames of P pixels, K components. Sizes: -DB=... -DP=... -DK=... (kernelc: -D B=... ...).

#ifndef B
#define B 16
#endif
#ifndef P
#define P 16384
#endif
#ifndef K
#define K 64
#endif

void pca(const float frames[B][P], const float mean[P], const float basis[P][K],
         float codes[B][K]) {
  float centred[B][P];
#pragma omp target map(to: frames[0:B][0:P], mean[0:P], basis[0:P][0:K]) \
    map(from: codes[0:B][0:K]) map(alloc: centred)
#pragma omp parallel num_threads(2)
#pragma omp single
  {
#pragma omp task depend(in: frames[0:B][0:P], mean[0:P]) depend(out: centred)
    for (int n = 0; n < B; n++) {
      for (int d = 0; d < P; d++) {
        centred[n][d] = frames[n][d] - mean[d];
      }
    }
#pragma omp task depend(in: centred, basis[0:P][0:K]) depend(out: codes[0:B][0:K])
    for (int n = 0; n < B; n++) {
      for (int k = 0; k < K; k++) {
        float acc = 0.0f;
        for (int d = 0; d < P; d++) {
          acc += centred[n][d] * basis[d][k];
        }
        codes[n][k] = acc;
      }
    }
  }
}
