#ifndef POPLAR_IPUMODEL_HPP
#define POPLAR_IPUMODEL_HPP

#include <string>

#include <poplar/Device.hpp>

namespace poplar {

class IPUModel {
public:
  explicit IPUModel(const char *arch = "ipu2") : arch(arch) {}
  std::string arch;
  unsigned tilesPerIPU = 1472;
  double tileClockFrequency = 1.33e9;
  Device createDevice() const { return Device(Target(arch, tilesPerIPU, 624 * 1024, tileClockFrequency)); }
};

} // namespace poplar

#endif
