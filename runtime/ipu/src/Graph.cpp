// Graph construction in kernelc's IPU model, with the checks Poplar makes when the graph is
// built: unknown vertex types and fields, a field connected to a tensor of another element type
// or (for a scalar field) another size, tiles outside the target, streams of the wrong size.
#include <map>
#include <mutex>
#include <numeric>
#include <sstream>

#include <poplar/Graph.hpp>
#include <poplar/Program.hpp>

#include "State.hpp"

namespace poplar {
namespace model {

namespace {
std::map<std::string, Factory> &registry() {
  static std::map<std::string, Factory> classes;
  return classes;
}
} // namespace

void registerVertexClass(const std::string &name, Factory factory) {
  registry()[name] = std::move(factory);
}

const Factory *findVertexClass(const std::string &name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

std::string describeVertex(const GraphState &g, int v) {
  const VertexState &vs = g.vertices.at(v);
  std::ostringstream s;
  s << "vertex " << v << " ('" << vs.type << "') in compute set '"
    << g.computeSets.at(vs.computeSet).name << "' on ";
  if (vs.tile < 0) {
    s << "no tile";
  } else {
    s << "tile " << vs.tile;
  }
  return s.str();
}

std::string directionName(Direction d) {
  return d == Direction::In      ? "Input"
         : d == Direction::Out   ? "Output"
         : d == Direction::InOut ? "InOut"
                                 : "vertex state";
}

std::size_t fieldIndex(const GraphState &g, const FieldRef &field, std::string &where) {
  const auto &v = g.vertices.at(field.vertex);
  const auto &fields = v.instance->fields;
  std::size_t i = 0;
  while (i < fields.size() && fields[i].name != field.name) ++i;
  where = describeVertex(g, field.vertex) + ": field '" + field.name + "'";
  if (i == fields.size()) throw graph_connection_error(where + " does not exist");
  if (v.connected[i]) throw graph_connection_error(where + " is connected twice");
  return i;
}

} // namespace model

// ------------------------------------------------------------------------------- tensors

Tensor Tensor::operator[](std::size_t i) const {
  if (shape_.empty()) throw poplar_error("cannot index a scalar tensor");
  Tensor row = slice(i, i + 1, 0);
  std::vector<std::size_t> shape(shape_.begin() + 1, shape_.end());
  return Tensor(var_, type_, shape, row.elems_);
}

Tensor Tensor::slice(std::size_t begin, std::size_t end, unsigned dimension) const {
  std::vector<std::size_t> b(shape_.size(), 0), e(shape_);
  if (dimension >= shape_.size()) throw poplar_error("slice dimension out of range");
  b[dimension] = begin;
  e[dimension] = end;
  return slice(b, e);
}

Tensor Tensor::slice(const std::vector<std::size_t> &begin,
                     const std::vector<std::size_t> &end) const {
  const std::size_t r = shape_.size();
  if (begin.size() != r || end.size() != r) throw poplar_error("slice rank mismatch");
  std::vector<std::size_t> shape(r), pitch(r, 1);
  for (std::size_t d = 0; d < r; ++d) {
    if (begin[d] > end[d] || end[d] > shape_[d]) throw poplar_error("slice out of range");
    shape[d] = end[d] - begin[d];
  }
  for (std::size_t d = r; d-- > 1;) pitch[d - 1] = pitch[d] * shape_[d];
  std::size_t count = std::accumulate(shape.begin(), shape.end(), std::size_t{1},
                                      std::multiplies<std::size_t>());
  std::vector<std::uint32_t> elems;
  elems.reserve(count);
  std::vector<std::size_t> idx(begin);
  for (std::size_t k = 0; k < count; ++k) {
    std::size_t flat = 0;
    for (std::size_t d = 0; d < r; ++d) flat += idx[d] * pitch[d];
    elems.push_back(elems_.at(flat));
    for (std::size_t d = r; d-- > 0;) {
      if (++idx[d] < end[d]) break;
      idx[d] = begin[d];
    }
  }
  return Tensor(var_, type_, shape, elems);
}

Tensor Tensor::reshape(const std::vector<std::size_t> &shape) const {
  std::size_t count = std::accumulate(shape.begin(), shape.end(), std::size_t{1},
                                      std::multiplies<std::size_t>());
  if (count != elems_.size()) throw poplar_error("reshape changes the number of elements");
  return Tensor(var_, type_, shape, elems_);
}

// --------------------------------------------------------------------------------- graph

Graph::Graph(const Target &target)
    : state_(std::make_shared<model::GraphState>()), target_(target) {
  state_->target = target;
}

Graph::Graph(std::shared_ptr<model::GraphState> state, const Target &target, unsigned first)
    : state_(std::move(state)), target_(target), first_(first) {}

const Target &Graph::getTarget() const { return target_; }

Graph Graph::createVirtualGraph(unsigned lowerTile, unsigned upperTile) {
  if (lowerTile >= upperTile || upperTile > target_.getNumTiles()) {
    std::ostringstream s;
    s << "createVirtualGraph(" << lowerTile << ", " << upperTile
      << "): not a non-empty range of this graph's " << target_.getNumTiles() << " tiles";
    throw poplar_error(s.str());
  }
  Target sub(target_.getTargetArchString(), upperTile - lowerTile, target_.getBytesPerTile(),
             target_.getTileClockFrequency());
  return Graph(state_, sub, first_ + lowerTile);
}

unsigned Graph::checkedTile(unsigned tile, const std::string &what) const {
  if (tile >= target_.getNumTiles()) {
    std::ostringstream s;
    s << what << ": tile " << tile << " is outside ";
    if (first_ == 0 && target_.getNumTiles() == state_->target.getNumTiles())
      s << "the target's " << target_.getNumTiles() << " tiles";
    else
      s << "the virtual graph's " << target_.getNumTiles() << " tiles (device tiles " << first_
        << ".." << first_ + target_.getNumTiles() - 1 << ")";
    throw invalid_tile_mapping(s.str());
  }
  return first_ + tile;
}

bool Graph::addCodelets(const std::string &) {
  // The model compiles codelets.cpp into the program (runtime/ipu/runner.py); adding them
  // makes the registered vertex classes available to addVertex.
  state_->codeletsAdded = true;
  return true;
}

Tensor Graph::addVariable(const Type &type, const std::vector<std::size_t> &shape,
                          const std::string &name) {
  model::Variable v;
  v.name = name;
  v.type = type;
  v.n = std::accumulate(shape.begin(), shape.end(), std::size_t{1},
                        std::multiplies<std::size_t>());
  v.tile.assign(v.n, -1);
  state_->variables.push_back(v);
  std::vector<std::uint32_t> elems(v.n);
  std::iota(elems.begin(), elems.end(), 0u);
  return Tensor(static_cast<int>(state_->variables.size() - 1), type, shape, elems);
}

void Graph::setTileMapping(const Tensor &t, unsigned tile) {
  auto &var = state_->variables.at(t.variable());
  unsigned at = checkedTile(tile, "tensor '" + var.name + "'");
  for (auto e : t.elements()) var.tile[e] = static_cast<int>(at);
}

void Graph::setTileMapping(VertexRef v, unsigned tile) {
  unsigned at = checkedTile(tile, model::describeVertex(*state_, v.getId()));
  state_->vertices.at(v.getId()).tile = static_cast<int>(at);
}

void Graph::setInitialValueFloat(const Tensor &t, double value) {
  auto &var = state_->variables.at(t.variable());
  if (t.numElements() != var.n)
    throw poplar_error("setInitialValue of '" + var.name + "': give the whole variable");
  var.hasInitial = true;
  var.initial = value;
}

ComputeSet Graph::addComputeSet(const std::string &name) {
  state_->computeSets.push_back(model::ComputeSetState{name, {}});
  return ComputeSet(static_cast<int>(state_->computeSets.size() - 1));
}

VertexRef Graph::addVertex(ComputeSet cs, const std::string &vertexType) {
  if (!state_->codeletsAdded)
    throw poplar_error("addVertex('" + vertexType + "') before addCodelets");
  const model::Factory *factory = model::findVertexClass(vertexType);
  if (factory == nullptr)
    throw poplar_error("vertex type '" + vertexType + "' is not defined in the codelets added");
  model::VertexState v;
  v.type = vertexType;
  v.computeSet = cs.getId();
  v.instance = (*factory)();
  v.connection.resize(v.instance->fields.size());
  v.connected.assign(v.instance->fields.size(), false);
  v.value.assign(v.instance->fields.size(), 0);
  state_->vertices.push_back(std::move(v));
  int id = static_cast<int>(state_->vertices.size() - 1);
  state_->computeSets.at(cs.getId()).vertices.push_back(id);
  return VertexRef(id);
}

namespace {
void checkType(const model::FieldSlot &slot, const Tensor &t, const std::string &where) {
  if (slot.direction == model::Direction::State)
    throw graph_connection_error(where + " is vertex state: give it a value with setInitialValue");
  if (slot.type != t.elementType())
    throw graph_connection_error(where + " (" + model::directionName(slot.direction) + " of " +
                                 slot.type.toString() + ") connected to a tensor of " +
                                 t.elementType().toString());
}
} // namespace

void Graph::connect(FieldRef field, const Tensor &t) {
  std::string where;
  const std::size_t i = model::fieldIndex(*state_, field, where);
  auto &v = state_->vertices.at(field.vertex);
  const auto &slot = v.instance->fields[i];
  checkType(slot, t, where);
  if (slot.list)
    throw graph_connection_error(where + " is a list of vectors: connect a std::vector<Tensor>");
  if (!slot.vector && t.numElements() != 1) {
    std::ostringstream s;
    s << where << " is a scalar field connected to a tensor of " << t.numElements()
      << " elements";
    throw graph_connection_error(s.str());
  }
  v.connection[i] = {t};
  v.connected[i] = true;
}

void Graph::connect(FieldRef field, const std::vector<Tensor> &tensors) {
  std::string where;
  const std::size_t i = model::fieldIndex(*state_, field, where);
  auto &v = state_->vertices.at(field.vertex);
  const auto &slot = v.instance->fields[i];
  if (!slot.list)
    throw graph_connection_error(where + " is not a list of vectors: connect one tensor");
  for (const auto &t : tensors) checkType(slot, t, where);
  v.connection[i] = tensors;
  v.connected[i] = true;
}

void Graph::setFieldValue(FieldRef field, long long value) {
  std::string where;
  const std::size_t i = model::fieldIndex(*state_, field, where);
  auto &v = state_->vertices.at(field.vertex);
  if (v.instance->fields[i].direction != model::Direction::State)
    throw graph_connection_error(where + " is an edge: connect a tensor to it");
  v.value[i] = value;
  v.connected[i] = true;
}

DataStream Graph::addHostToDeviceFIFO(const std::string &handle, const Type &type,
                                      std::size_t n) {
  state_->streams.emplace_back(static_cast<int>(state_->streams.size()), handle, type, n, true);
  return state_->streams.back();
}

DataStream Graph::addDeviceToHostFIFO(const std::string &handle, const Type &type,
                                      std::size_t n) {
  state_->streams.emplace_back(static_cast<int>(state_->streams.size()), handle, type, n, false);
  return state_->streams.back();
}

// ------------------------------------------------------------------------------ programs

namespace program {

namespace {
void checkStream(const DataStream &s, const Tensor &t) {
  if (s.numElements() != t.numElements() || s.elementType() != t.elementType()) {
    std::ostringstream m;
    m << "Copy between stream '" << s.handle() << "' (" << s.numElements() << " x "
      << s.elementType().toString() << ") and a tensor of " << t.numElements() << " x "
      << t.elementType().toString();
    throw poplar_error(m.str());
  }
}
} // namespace

Copy::Copy(const DataStream &stream, const Tensor &dst) {
  checkStream(stream, dst);
  if (!stream.toDevice()) throw poplar_error("stream '" + stream.handle() + "' is device-to-host");
  step_->kind = Step::COPY_TO_DEVICE;
  step_->stream = stream;
  step_->dst = dst;
}

Copy::Copy(const Tensor &src, const DataStream &stream) {
  checkStream(stream, src);
  if (stream.toDevice()) throw poplar_error("stream '" + stream.handle() + "' is host-to-device");
  step_->kind = Step::COPY_TO_HOST;
  step_->stream = stream;
  step_->src = src;
}

Copy::Copy(const Tensor &src, const Tensor &dst) {
  if (src.numElements() != dst.numElements() || src.elementType() != dst.elementType())
    throw poplar_error("Copy between tensors of different sizes or types");
  step_->kind = Step::COPY;
  step_->src = src;
  step_->dst = dst;
}

} // namespace program

void copyDeviceHalfToFloat(const Target &, const void *src, float *dst, std::size_t n) {
  const auto *h = static_cast<const std::uint16_t *>(src);
  for (std::size_t i = 0; i < n; ++i) dst[i] = detail::halfBitsToFloat(h[i]);
}

void copyFloatToDeviceHalf(const Target &, const float *src, void *dst, std::size_t n) {
  auto *h = static_cast<std::uint16_t *>(dst);
  for (std::size_t i = 0; i < n; ++i) h[i] = detail::floatToHalfBits(src[i]);
}

} // namespace poplar
