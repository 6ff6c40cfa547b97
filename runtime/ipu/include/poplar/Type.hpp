// Element types of tensors, as poplar::Type (kernelc's IPU model; the real SDK's names).
#ifndef POPLAR_TYPE_HPP
#define POPLAR_TYPE_HPP

#include <cstddef>
#include <string>

namespace poplar {

class Type {
public:
  constexpr Type() : id_(0), size_(0), name_("void") {}
  constexpr Type(int id, std::size_t size, const char *name) : id_(id), size_(size), name_(name) {}
  std::string toString() const { return name_; }
  std::size_t size() const { return size_; }
  bool operator==(const Type &o) const { return id_ == o.id_; }
  bool operator!=(const Type &o) const { return id_ != o.id_; }

private:
  int id_;
  std::size_t size_;
  const char *name_;
};

inline constexpr Type BOOL{1, 1, "bool"};
inline constexpr Type HALF{2, 2, "half"};
inline constexpr Type FLOAT{3, 4, "float"};
inline constexpr Type INT{4, 4, "int"};
inline constexpr Type UNSIGNED_INT{5, 4, "unsigned int"};
inline constexpr Type UNSIGNED_SHORT{6, 2, "unsigned short"};

} // namespace poplar

#endif
