// The model's stand-in for popc's introspection of codelets: the runner generates a shim that
// names each vertex class and its fields; the field types come from the C++ declarations
// themselves (overloads below), so a field's direction and element type are what codelets.cpp
// says. Not part of the Poplar API.
#ifndef POPLAR_MODEL_REGISTRY_HPP
#define POPLAR_MODEL_REGISTRY_HPP

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <poplar/Type.hpp>
#include <poplar/Vertex.hpp>

namespace poplar {
namespace model {

enum class Direction { In, Out, InOut, State };

template <typename T> constexpr Type typeOf();
template <> constexpr Type typeOf<float>() { return FLOAT; }
template <> constexpr Type typeOf<half>() { return HALF; }
template <> constexpr Type typeOf<int>() { return INT; }
template <> constexpr Type typeOf<unsigned>() { return UNSIGNED_INT; }
template <> constexpr Type typeOf<unsigned short>() { return UNSIGNED_SHORT; }
template <> constexpr Type typeOf<bool>() { return BOOL; }

// One field of one vertex instance: how to point it at the engine's local buffers (one per
// connected tensor: several for a list field), or set its value (a vertex state field).
struct FieldSlot {
  std::string name;
  Direction direction;
  Type type;
  bool vector;
  bool list;
  std::function<void(void *const *, const std::size_t *, std::size_t)> bind;
  std::function<void(long long)> set;
};

class FieldBinder {
public:
  explicit FieldBinder(std::vector<FieldSlot> &slots) : slots_(slots) {}

  template <typename T> void operator()(const char *name, Input<T> &f) {
    add(name, Direction::In, typeOf<T>(), false,
        [&f](void *const *p, const std::size_t *, std::size_t) {
          f.data_ = static_cast<const T *>(p[0]);
        });
  }
  template <typename T> void operator()(const char *name, Output<T> &f) {
    add(name, Direction::Out, typeOf<T>(), false,
        [&f](void *const *p, const std::size_t *, std::size_t) {
          f.data_ = static_cast<T *>(p[0]);
        });
  }
  template <typename T> void operator()(const char *name, InOut<T> &f) {
    add(name, Direction::InOut, typeOf<T>(), false,
        [&f](void *const *p, const std::size_t *, std::size_t) {
          f.data_ = static_cast<T *>(p[0]);
        });
  }
  template <typename T, VectorLayout L, unsigned A, bool I>
  void operator()(const char *name, Input<Vector<T, L, A, I>> &f) {
    f.field_ = static_cast<unsigned>(slots_.size());
    add(name, Direction::In, typeOf<T>(), true,
        [&f](void *const *p, const std::size_t *n, std::size_t) { point(f, p[0], n[0]); });
  }
  template <typename T, VectorLayout L, unsigned A, bool I>
  void operator()(const char *name, Output<Vector<T, L, A, I>> &f) {
    f.field_ = static_cast<unsigned>(slots_.size());
    add(name, Direction::Out, typeOf<T>(), true,
        [&f](void *const *p, const std::size_t *n, std::size_t) { point(f, p[0], n[0]); });
  }
  template <typename T, VectorLayout L, unsigned A, bool I>
  void operator()(const char *name, InOut<Vector<T, L, A, I>> &f) {
    f.field_ = static_cast<unsigned>(slots_.size());
    add(name, Direction::InOut, typeOf<T>(), true,
        [&f](void *const *p, const std::size_t *n, std::size_t) { point(f, p[0], n[0]); });
  }

  // A list field: Vector<Input<Vector<T>>> and its Output / InOut forms.
  template <template <typename> class Edge, typename T, VectorLayout L, unsigned A, bool I,
            VectorLayout L2, unsigned A2, bool I2>
  void operator()(const char *name, Vector<Edge<Vector<T, L, A, I>>, L2, A2, I2> &f) {
    constexpr Direction d = std::is_same_v<Edge<int>, Input<int>>    ? Direction::In
                            : std::is_same_v<Edge<int>, Output<int>> ? Direction::Out
                                                                     : Direction::InOut;
    FieldSlot slot{name, d, typeOf<T>(), true, true, {}, {}};
    const auto field = static_cast<unsigned>(slots_.size());
    f.field_ = field;
    slot.bind = [&f, field](void *const *p, const std::size_t *n, std::size_t count) {
      f.items_.assign(count, Edge<Vector<T, L, A, I>>());
      for (std::size_t i = 0; i < count; ++i) {
        point(f.items_[i], p[i], n[i]);
        f.items_[i].field_ = field;
        f.items_[i].block_ = i;
      }
    };
    slots_.push_back(std::move(slot));
  }
  // Vertex state: a plain integer member set from the host with setInitialValue.
  void operator()(const char *name, int &f) { state(name, INT, [&f](long long x) { f = static_cast<int>(x); }); }
  void operator()(const char *name, unsigned &f) {
    state(name, UNSIGNED_INT, [&f](long long x) { f = static_cast<unsigned>(x); });
  }

private:
  template <typename Field> static void point(Field &f, void *p, std::size_t n) {
    f.data_ = static_cast<decltype(f.data_)>(p);
    f.size_ = n;
  }
  void add(const char *name, Direction d, Type t, bool vector,
           std::function<void(void *const *, const std::size_t *, std::size_t)> bind) {
    slots_.push_back(FieldSlot{name, d, t, vector, false, std::move(bind), {}});
  }
  void state(const char *name, Type t, std::function<void(long long)> set) {
    slots_.push_back(FieldSlot{name, Direction::State, t, false, false, {}, std::move(set)});
  }
  std::vector<FieldSlot> &slots_;
};

// A live vertex object with its fields; run(w) calls compute (w: the worker of a MultiVertex).
class Instance {
public:
  virtual ~Instance() = default;
  virtual bool run(unsigned worker) = 0;
  virtual bool multi() const = 0;
  std::vector<FieldSlot> fields;
};

template <typename V> class InstanceOf : public Instance {
public:
  template <typename Describe> explicit InstanceOf(Describe describe) {
    FieldBinder binder(fields);
    describe(vertex, binder);
  }
  bool run(unsigned worker) override {
    if constexpr (std::is_base_of_v<MultiVertex, V>) {
      return vertex.compute(worker);
    } else {
      (void)worker;
      return vertex.compute();
    }
  }
  bool multi() const override { return std::is_base_of_v<MultiVertex, V>; }
  V vertex{};
};

using Factory = std::function<std::unique_ptr<Instance>()>;

void registerVertexClass(const std::string &name, Factory factory);
const Factory *findVertexClass(const std::string &name);

template <typename V, typename Describe>
bool vertexClass(const char *name, Describe describe) {
  registerVertexClass(name, [describe]() -> std::unique_ptr<Instance> {
    return std::make_unique<InstanceOf<V>>(describe);
  });
  return true;
}

} // namespace model
} // namespace poplar

#endif
