// The graph: variables and their tile mapping, compute sets, vertices and their connections,
// host streams (kernelc's IPU model of the Poplar API subset kernelc emits).
#ifndef POPLAR_GRAPH_HPP
#define POPLAR_GRAPH_HPP

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <poplar/DataStream.hpp>
#include <poplar/Device.hpp>
#include <poplar/Target.hpp>
#include <poplar/Tensor.hpp>
#include <poplar/Type.hpp>
#include <poplar/exceptions.hpp>

namespace poplar {

namespace model {
struct GraphState;
} // namespace model

class ComputeSet {
public:
  ComputeSet() = default;
  explicit ComputeSet(int id) : id_(id) {}
  int getId() const { return id_; }

private:
  int id_ = -1;
};

class FieldRef {
public:
  FieldRef(int vertex, std::string name) : vertex(vertex), name(std::move(name)) {}
  int vertex;
  std::string name;
};

class VertexRef {
public:
  VertexRef() = default;
  explicit VertexRef(int id) : id_(id) {}
  FieldRef operator[](const std::string &field) const { return FieldRef(id_, field); }
  int getId() const { return id_; }

private:
  int id_ = -1;
};

class Graph {
public:
  explicit Graph(const Target &target);
  explicit Graph(const Device &device) : Graph(device.getTarget()) {}

  const Target &getTarget() const;
  bool addCodelets(const std::string &file);
  // A graph over tiles [lowerTile, upperTile) of this one, numbered from 0 within them;
  // it shares this graph's tensors, compute sets and vertices.
  Graph createVirtualGraph(unsigned lowerTile, unsigned upperTile);

  Tensor addVariable(const Type &type, const std::vector<std::size_t> &shape,
                     const std::string &name);
  void setTileMapping(const Tensor &t, unsigned tile);
  void setTileMapping(VertexRef v, unsigned tile);
  template <typename T> void setInitialValue(const Tensor &t, T value) {
    setInitialValueFloat(t, static_cast<double>(value));
  }
  // A vertex state field's value (a plain integer member of the vertex class).
  template <typename T> void setInitialValue(FieldRef field, T value) {
    setFieldValue(field, static_cast<long long>(value));
  }

  ComputeSet addComputeSet(const std::string &name);
  VertexRef addVertex(ComputeSet cs, const std::string &vertexType);
  void connect(FieldRef field, const Tensor &t);
  // A list field (Vector<Input<Vector<T>>>): one tensor per block.
  void connect(FieldRef field, const std::vector<Tensor> &tensors);

  DataStream addHostToDeviceFIFO(const std::string &handle, const Type &type, std::size_t n);
  DataStream addDeviceToHostFIFO(const std::string &handle, const Type &type, std::size_t n);

  // The model's state, shared with the Engine (not Poplar API).
  std::shared_ptr<model::GraphState> state() const { return state_; }

private:
  Graph(std::shared_ptr<model::GraphState> state, const Target &target, unsigned first);
  void setInitialValueFloat(const Tensor &t, double value);
  void setFieldValue(FieldRef field, long long value);
  unsigned checkedTile(unsigned tile, const std::string &what) const;
  std::shared_ptr<model::GraphState> state_;
  Target target_;      // this graph's tiles: the device's, or a virtual graph's range
  unsigned first_ = 0; // this graph's tile 0 among the device's tiles
};

} // namespace poplar

#endif
