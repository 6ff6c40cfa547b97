// Sobel gradient magnitude of a 2-D image (the same kernel as examples/sobel.k), offloaded with
// OpenMP: two data-parallel loops in one target region, the first zeroing the output, the
// second computing the interior (kernelc orders them: both write mag).
//
// mag[i][j] = sqrt(gx^2 + gy^2) where gx is the right column minus the left column of the 3x3
// neighbourhood (weights 1, 2, 1) and gy the bottom row minus the top row. Border pixels are 0.
// Sizes: compile with -DH=... -DW=... (kernelc: -D H=... -D W=...).

#include <math.h>
#include <omp.h>

#ifndef H
#define H 800
#endif
#ifndef W
#define W 800
#endif

void sobel(const float img[H][W], float mag[H][W]) {
#pragma omp target map(to: img[0:H][0:W]) map(from: mag[0:H][0:W])
  {
#pragma omp parallel for collapse(2)
    for (int i = 0; i < H; i++) {
      for (int j = 0; j < W; j++) {
        mag[i][j] = 0.0f;
      }
    }
#pragma omp parallel for collapse(2)
    for (int i = 1; i < H - 1; i++) {
      for (int j = 1; j < W - 1; j++) {
        float gx = (img[i - 1][j + 1] + 2 * img[i][j + 1] + img[i + 1][j + 1]) -
                   (img[i - 1][j - 1] + 2 * img[i][j - 1] + img[i + 1][j - 1]);
        float gy = (img[i + 1][j - 1] + 2 * img[i + 1][j] + img[i + 1][j + 1]) -
                   (img[i - 1][j - 1] + 2 * img[i - 1][j] + img[i - 1][j + 1]);
        mag[i][j] = sqrtf(gx * gx + gy * gy);
      }
    }
  }
}
