// A tensor: a view of some elements of one graph variable (kernelc's IPU model keeps the list of
// the variable's element indices the view selects, row-major).
#ifndef POPLAR_TENSOR_HPP
#define POPLAR_TENSOR_HPP

#include <cstddef>
#include <cstdint>
#include <vector>

#include <poplar/Type.hpp>

namespace poplar {

class Tensor {
public:
  Tensor() = default;
  Tensor(int var, Type type, std::vector<std::size_t> shape, std::vector<std::uint32_t> elems)
      : var_(var), type_(type), shape_(std::move(shape)), elems_(std::move(elems)) {}

  std::size_t numElements() const { return elems_.size(); }
  unsigned rank() const { return static_cast<unsigned>(shape_.size()); }
  std::size_t dim(unsigned i) const { return shape_.at(i); }
  const std::vector<std::size_t> &shape() const { return shape_; }
  Type elementType() const { return type_; }

  Tensor operator[](std::size_t i) const;
  Tensor slice(std::size_t begin, std::size_t end, unsigned dimension = 0) const;
  Tensor slice(const std::vector<std::size_t> &begin, const std::vector<std::size_t> &end) const;
  Tensor flatten() const { return Tensor(var_, type_, {elems_.size()}, elems_); }
  Tensor reshape(const std::vector<std::size_t> &shape) const;

  // The model's view of the tensor (not Poplar API).
  int variable() const { return var_; }
  const std::vector<std::uint32_t> &elements() const { return elems_; }

private:
  int var_ = -1;
  Type type_;
  std::vector<std::size_t> shape_;
  std::vector<std::uint32_t> elems_;
};

} // namespace poplar

#endif
