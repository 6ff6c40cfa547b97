#ifndef POPLAR_DATASTREAM_HPP
#define POPLAR_DATASTREAM_HPP

#include <cstddef>
#include <string>

#include <poplar/Type.hpp>

namespace poplar {

class DataStream {
public:
  DataStream() = default;
  DataStream(int id, std::string handle, Type type, std::size_t n, bool toDevice)
      : id_(id), handle_(std::move(handle)), type_(type), n_(n), toDevice_(toDevice) {}
  const std::string &handle() const { return handle_; }
  std::size_t numElements() const { return n_; }
  Type elementType() const { return type_; }
  int id() const { return id_; }
  bool toDevice() const { return toDevice_; }

private:
  int id_ = -1;
  std::string handle_;
  Type type_;
  std::size_t n_ = 0;
  bool toDevice_ = true;
};

} // namespace poplar

#endif
