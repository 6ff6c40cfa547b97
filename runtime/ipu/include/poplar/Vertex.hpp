// Vertex base classes and field types for C++ codelets (kernelc's IPU model).
//
// Fields behave as on the IPU: Input<...> gives const access only (writing through one does not
// compile), Output/InOut give mutable access, Vector<T> fields know their size. Each element
// access through a field is counted: the count is the vertex's work in the model's cycle model
// (docs/POPLAR.md, "Cycle model"). An index outside what the field is connected to is an error
// naming the vertex, the field, the index and the size (on an IPU it would read or write
// another variable's memory, or raise a memory exception).
#ifndef POPLAR_VERTEX_HPP
#define POPLAR_VERTEX_HPP

#include <cstddef>
#include <vector>

#include <poplar/HalfFloat.hpp>

namespace poplar {

namespace model {
// Element accesses made through vertex fields since the engine last reset it.
inline unsigned long long fieldAccesses = 0;
class FieldBinder;
// Raised (as model::FieldIndexError, which the engine reports with the vertex) by an access
// at ``index`` to block ``block`` of field number ``field`` (a list field's own index:
// block == size_t(-1)), which holds ``size`` elements (or blocks).
[[noreturn]] void fieldIndexOutOfRange(unsigned field, std::size_t block, std::size_t index,
                                       std::size_t size);
constexpr std::size_t LIST = static_cast<std::size_t>(-1);
} // namespace model

class Vertex {};

class MultiVertex {
public:
  static constexpr unsigned numWorkers() { return 6; }
};

enum class VectorLayout { SPAN, ONE_PTR };

// As a field, Vector<Input<Vector<T>>> (and Output/InOut) is a list of separately placed
// blocks, each connected to its own tensor (Poplar's "2D" vertices); indexing it picks a block.
template <typename T, VectorLayout L = VectorLayout::SPAN, unsigned MinAlign = 1,
          bool Interleaved = false>
class Vector {
public:
  const T &operator[](std::size_t i) const {
    ++model::fieldAccesses;
    if (i >= items_.size()) model::fieldIndexOutOfRange(field_, model::LIST, i, items_.size());
    return items_[i];
  }
  std::size_t size() const { return items_.size(); }
  const T *begin() const { return items_.data(); }
  const T *end() const { return items_.data() + items_.size(); }

private:
  friend class model::FieldBinder;
  std::vector<T> items_;
  unsigned field_ = 0;
};

template <typename T> class Input {
public:
  const T &operator*() const { ++model::fieldAccesses; return *data_; }

private:
  friend class model::FieldBinder;
  const T *data_ = nullptr;
};

template <typename T> class Output {
public:
  T &operator*() const { ++model::fieldAccesses; return *data_; }

private:
  friend class model::FieldBinder;
  T *data_ = nullptr;
};

template <typename T> class InOut {
public:
  T &operator*() const { ++model::fieldAccesses; return *data_; }

private:
  friend class model::FieldBinder;
  T *data_ = nullptr;
};

template <typename T, VectorLayout L, unsigned A, bool I> class Input<Vector<T, L, A, I>> {
public:
  const T &operator[](std::size_t i) const {
    ++model::fieldAccesses;
    if (i >= size_) model::fieldIndexOutOfRange(field_, block_, i, size_);
    return data_[i];
  }
  std::size_t size() const { return size_; }
  const T *begin() const { return data_; }
  const T *end() const { return data_ + size_; }

private:
  friend class model::FieldBinder;
  const T *data_ = nullptr;
  std::size_t size_ = 0;
  unsigned field_ = 0;
  std::size_t block_ = 0;
};

template <typename T, VectorLayout L, unsigned A, bool I> class Output<Vector<T, L, A, I>> {
public:
  T &operator[](std::size_t i) const {
    ++model::fieldAccesses;
    if (i >= size_) model::fieldIndexOutOfRange(field_, block_, i, size_);
    return data_[i];
  }
  std::size_t size() const { return size_; }
  T *begin() const { return data_; }
  T *end() const { return data_ + size_; }

private:
  friend class model::FieldBinder;
  T *data_ = nullptr;
  std::size_t size_ = 0;
  unsigned field_ = 0;
  std::size_t block_ = 0;
};

template <typename T, VectorLayout L, unsigned A, bool I> class InOut<Vector<T, L, A, I>> {
public:
  T &operator[](std::size_t i) const {
    ++model::fieldAccesses;
    if (i >= size_) model::fieldIndexOutOfRange(field_, block_, i, size_);
    return data_[i];
  }
  std::size_t size() const { return size_; }
  T *begin() const { return data_; }
  T *end() const { return data_ + size_; }

private:
  friend class model::FieldBinder;
  T *data_ = nullptr;
  std::size_t size_ = 0;
  unsigned field_ = 0;
  std::size_t block_ = 0;
};

} // namespace poplar

#endif
