#ifndef POPLAR_DEVICE_HPP
#define POPLAR_DEVICE_HPP

#include <poplar/Target.hpp>

namespace poplar {

class Device {
public:
  Device() = default;
  explicit Device(Target t, bool hardware = false) : target_(t), hardware_(hardware) {}
  const Target &getTarget() const { return target_; }
  // The model has no IPU hardware: only model devices attach.
  bool attach() { return !hardware_; }
  void detach() {}
  unsigned getId() const { return 0; }

private:
  Target target_;
  bool hardware_ = false;
};

} // namespace poplar

#endif
