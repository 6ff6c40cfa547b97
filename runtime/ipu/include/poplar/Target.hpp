// The machine a graph is built for (kernelc's IPU model: figures from docs/POPLAR.md).
#ifndef POPLAR_TARGET_HPP
#define POPLAR_TARGET_HPP

#include <cstddef>
#include <string>

#include <poplar/Type.hpp>

namespace poplar {

enum class TargetType { IPU, IPU_MODEL, CPU };

class Target {
public:
  Target() = default;
  Target(std::string arch, unsigned tiles, std::size_t bytesPerTile, double clockHz)
      : arch_(std::move(arch)), tiles_(tiles), bytesPerTile_(bytesPerTile), clockHz_(clockHz) {}
  unsigned getNumTiles() const { return tiles_; }
  unsigned getTilesPerIPU() const { return tiles_; }
  unsigned getNumIPUs() const { return 1; }
  unsigned getNumWorkerContexts() const { return 6; }
  unsigned getExchangeBytesPerCycle() const { return 4; }
  std::size_t getBytesPerTile() const { return bytesPerTile_; }
  double getTileClockFrequency() const { return clockHz_; }
  std::size_t getTypeSize(const Type &t) const { return t.size(); }
  const std::string &getTargetArchString() const { return arch_; }

private:
  std::string arch_ = "ipu2";
  unsigned tiles_ = 1472;
  std::size_t bytesPerTile_ = 624 * 1024;
  double clockHz_ = 1.33e9;
};

// Host-side conversion of IEEE halves (as the SDK's functions of these names).
void copyDeviceHalfToFloat(const Target &target, const void *src, float *dst, std::size_t n);
void copyFloatToDeviceHalf(const Target &target, const float *src, void *dst, std::size_t n);

} // namespace poplar

#endif
