// The model's graph state, shared by Graph, Program and Engine (not Poplar API).
#ifndef KERNELC_IPU_STATE_HPP
#define KERNELC_IPU_STATE_HPP

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <poplar/DataStream.hpp>
#include <poplar/Graph.hpp>
#include <poplar/Target.hpp>
#include <poplar/Tensor.hpp>
#include <poplar/model/Registry.hpp>

namespace poplar {
namespace model {

struct Variable {
  std::string name;
  Type type;
  std::size_t n = 0;
  std::vector<int> tile; // per element; -1 while unmapped
  bool hasInitial = false;
  double initial = 0;
};

struct VertexState {
  std::string type;
  int computeSet = -1;
  int tile = -1;
  std::unique_ptr<Instance> instance;
  std::vector<std::vector<Tensor>> connection; // per field, in declaration order (lists: several)
  std::vector<bool> connected;                 // tensors connected, or a state value set
  std::vector<long long> value;                // per state field
};

struct ComputeSetState {
  std::string name;
  std::vector<int> vertices;
};

struct GraphState {
  Target target;
  bool codeletsAdded = false;
  std::vector<Variable> variables;
  std::vector<VertexState> vertices;
  std::vector<ComputeSetState> computeSets;
  std::vector<DataStream> streams;
};

std::string describeVertex(const GraphState &g, int v);
std::string directionName(Direction d);
std::size_t fieldIndex(const GraphState &g, const FieldRef &field, std::string &where);

} // namespace model
} // namespace poplar

#endif
