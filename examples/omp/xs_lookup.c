// XSBench macroscopic cross-section lookup (the same kernel as examples/xs_lookup.k), offloaded
// with OpenMP: a data-parallel loop over the lookups.
//
// For lookup l with energy e and material m: macro[l][c] is the sum over the material's
// nuclides n of conc * sigma_n[c](e), where sigma_n interpolates nuclide n's channel c between
// the two grid points that bracket e. The bracket comes from a binary search (the probe sequence
// of kernelc's `search`: a fixed 32 steps cover any grid an int can index), clamped to
// [0, NG - 2] so energies outside the grid extrapolate. kernelc recognises this search and
// compiles it as `search` (docs/OPENMP.md), so on csl the nuclide grids are cut into energy
// bands over the PEs exactly as for examples/xs_lookup.k. Inputs: `kernelc xsdata`.

#ifndef NI
#define NI 68
#endif
#ifndef NG
#define NG 11303
#endif
#ifndef NM
#define NM 12
#endif
#ifndef MAXN
#define MAXN 34
#endif
#ifndef L
#define L 100000
#endif

void xs_lookup(const float egrid[NI][NG], const float xs[NI][NG][5], const int mat_nucs[NM][MAXN],
               const float mat_conc[NM][MAXN], const int mat_count[NM], const float energy[L],
               const int material[L], float macro[L][5]) {
#pragma omp target teams distribute parallel for \
    map(to: egrid[0:NI][0:NG], xs[0:NI][0:NG][0:5], mat_nucs[0:NM][0:MAXN]) \
    map(to: mat_conc[0:NM][0:MAXN], mat_count[0:NM], energy[0:L], material[0:L]) \
    map(from: macro[0:L][0:5])
  for (int l = 0; l < L; l++) {
    float e = energy[l];
    int m = material[l];
    for (int c = 0; c < 5; c++) {
      macro[l][c] = 0.0f;
    }
    for (int j = 0; j < mat_count[m]; j++) {
      int n = mat_nucs[m][j];
      float conc = mat_conc[m][j];
      int lo = 0;
      int hi = NG;
      for (int step = 0; step < 32; step++) {
        if (lo < hi) {
          int mid = lo + (hi - lo) / 2;
          if (egrid[n][mid] <= e) {
            lo = mid + 1;
          } else {
            hi = mid;
          }
        }
      }
      int k = lo - 1;
      k = k < NG - 2 ? k : NG - 2;
      k = k > 0 ? k : 0;
      float f = (egrid[n][k + 1] - e) / (egrid[n][k + 1] - egrid[n][k]);
      for (int c = 0; c < 5; c++) {
        macro[l][c] += conc * (xs[n][k + 1][c] - f * (xs[n][k + 1][c] - xs[n][k][c]));
      }
    }
  }
}
