// The Engine of kernelc's IPU model: compile-time checks (tile mapping, connections, memory,
// races within a compute set) and BSP execution with a cycle count (docs/POPLAR.md).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <unordered_map>

#include <poplar/Engine.hpp>
#include <poplar/HalfFloat.hpp>

#include "State.hpp"

namespace poplar {
namespace model {

// Cycle model constants (docs/POPLAR.md, "Cycle model").
constexpr unsigned long long VERTEX_OVERHEAD_INSTRUCTIONS = 20; // entry, field loads, exit
constexpr unsigned long long INSTRUCTIONS_PER_ACCESS = 3;       // address, load/store, op
constexpr unsigned long long SYNC_CYCLES = 90;                  // one global sync
constexpr unsigned WORKERS = 6;

struct Counters {
  unsigned long long compute = 0, exchange = 0, sync = 0, hostBytes = 0, exchangeBytes = 0;
  unsigned long long supersteps = 0;
};

// Progress for kernelc's terminal line: when KERNELC_IPU_PROGRESS names a file, the engine
// replaces it, at most ten times a second, with one line "PHASE SUPERSTEPS_DONE SUPERSTEPS
// VERTICES_DONE VERTICES CYCLES" (PHASE: check or run; the vertices of the running compute
// set; the cycles counted so far), which kernelc reads while the program runs.
class Progress {
public:
  unsigned long long supersteps = 0; // of the whole program

  void report(const char *phase, const Counters &c, std::size_t vertex = 0,
              std::size_t vertices = 0) {
    if (path_ == nullptr) return;
    const auto now = std::chrono::steady_clock::now();
    if (now < next_) return;
    next_ = now + std::chrono::milliseconds(100);
    const std::string tmp = std::string(path_) + ".tmp";
    {
      std::ofstream out(tmp);
      out << phase << ' ' << c.supersteps << ' ' << supersteps << ' ' << vertex << ' '
          << vertices << ' ' << c.compute + c.exchange + c.sync << '\n';
    }
    std::rename(tmp.c_str(), path_);
  }

private:
  const char *path_ = std::getenv("KERNELC_IPU_PROGRESS");
  std::chrono::steady_clock::time_point next_{};
};

struct EngineState {
  std::shared_ptr<GraphState> graph;
  program::Program prog;
  std::vector<std::vector<unsigned char>> storage; // per variable
  std::map<std::string, void *> streams;
  bool loaded = false;
  Counters counters;
  std::map<int, Counters> perComputeSet; // what each compute set's supersteps added
  std::vector<std::size_t> tileBytes;
  unsigned tilesUsed = 0;
  Progress progress;
};

// An access outside a field's connected size, caught where the engine knows the vertex.
struct FieldIndexError {
  unsigned field;
  std::size_t block, index, size;
};

void fieldIndexOutOfRange(unsigned field, std::size_t block, std::size_t index,
                          std::size_t size) {
  throw FieldIndexError{field, block, index, size};
}

namespace {

std::size_t ceilDiv(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

void checkMapping(const GraphState &g) {
  for (const auto &var : g.variables) {
    for (std::size_t e = 0; e < var.n; ++e) {
      if (var.tile[e] < 0) {
        std::ostringstream s;
        s << "tensor '" << var.name << "' has no tile mapping for element " << e << " (of "
          << var.n << "): every element of a variable must be mapped to a tile";
        throw invalid_tile_mapping(s.str());
      }
    }
  }
}

void checkVertices(const GraphState &g) {
  for (std::size_t v = 0; v < g.vertices.size(); ++v) {
    const auto &vs = g.vertices[v];
    if (vs.tile < 0)
      throw invalid_tile_mapping(describeVertex(g, static_cast<int>(v)) +
                                 ": the vertex has no tile mapping");
    for (std::size_t f = 0; f < vs.connected.size(); ++f) {
      if (!vs.connected[f]) {
        const bool state = vs.instance->fields[f].direction == Direction::State;
        throw graph_connection_error(describeVertex(g, static_cast<int>(v)) + ": field '" +
                                     vs.instance->fields[f].name +
                                     (state ? "' (vertex state) has no value"
                                            : "' is not connected"));
      }
    }
  }
}

std::string fieldAt(const GraphState &g, int v, std::size_t f) {
  return describeVertex(g, v) + ", field '" + g.vertices[v].instance->fields[f].name + "'";
}

std::string outOfRange(const GraphState &g, int v, const FieldIndexError &e, int worker) {
  std::ostringstream s;
  s << fieldAt(g, v, e.field);
  if (worker >= 0) s << ", worker " << worker;
  if (e.block == LIST)
    s << ": block index " << static_cast<long long>(e.index) << " is outside the " << e.size
      << " blocks the list field is connected to";
  else if (g.vertices[v].instance->fields[e.field].list)
    s << ": index " << static_cast<long long>(e.index) << " into block " << e.block
      << " is outside its " << e.size << " elements";
  else
    s << ": index " << static_cast<long long>(e.index) << " is outside the " << e.size
      << " elements the field is connected to";
  s << " (on an IPU this reads or writes other memory of the tile)";
  return s.str();
}

void checkRaces(const GraphState &g) {
  for (const auto &cs : g.computeSets) {
    std::unordered_map<std::uint64_t, std::pair<int, std::size_t>> writer;
    for (int v : cs.vertices) {
      const auto &vs = g.vertices[v];
      for (std::size_t f = 0; f < vs.connection.size(); ++f) {
        const Direction d = vs.instance->fields[f].direction;
        if (d == Direction::In || d == Direction::State) continue;
        for (const Tensor &t : vs.connection[f])
        for (auto e : t.elements()) {
          std::uint64_t key = (static_cast<std::uint64_t>(t.variable()) << 32) | e;
          auto [it, fresh] = writer.emplace(key, std::make_pair(v, f));
          if (!fresh && it->second.first != v) {
            std::ostringstream s;
            s << "race in compute set '" << cs.name << "': " << fieldAt(g, v, f)
              << " writes element " << e << " of '" << g.variables[t.variable()].name
              << "', which " << fieldAt(g, it->second.first, it->second.second)
              << " also writes";
            throw compute_set_race_error(s.str());
          }
        }
      }
    }
    for (int v : cs.vertices) {
      const auto &vs = g.vertices[v];
      for (std::size_t f = 0; f < vs.connection.size(); ++f) {
        if (vs.instance->fields[f].direction != Direction::In) continue;
        for (const Tensor &t : vs.connection[f])
        for (auto e : t.elements()) {
          std::uint64_t key = (static_cast<std::uint64_t>(t.variable()) << 32) | e;
          auto it = writer.find(key);
          if (it != writer.end() && it->second.first != v) {
            std::ostringstream s;
            s << "race in compute set '" << cs.name << "': " << fieldAt(g, v, f)
              << " reads element " << e << " of '" << g.variables[t.variable()].name
              << "', which " << fieldAt(g, it->second.first, it->second.second)
              << " writes in the same compute set";
            throw compute_set_race_error(s.str());
          }
        }
      }
    }
  }
}

// Bytes per tile: mapped tensor elements, vertex state (a pointer and a size per vector
// field, one word per scalar field) and, for the compute set that needs most, buffers for the
// elements exchanged in from other tiles.
void checkMemory(EngineState &es) {
  const GraphState &g = *es.graph;
  const unsigned tiles = g.target.getNumTiles();
  std::vector<std::size_t> bytes(tiles, 0);
  std::vector<std::map<int, std::size_t>> perVar(tiles);
  std::vector<bool> used(tiles, false);
  for (std::size_t v = 0; v < g.variables.size(); ++v) {
    const auto &var = g.variables[v];
    for (std::size_t e = 0; e < var.n; ++e) {
      bytes[var.tile[e]] += var.type.size();
      perVar[var.tile[e]][static_cast<int>(v)] += var.type.size();
      used[var.tile[e]] = true;
    }
  }
  std::vector<std::size_t> buffers(tiles, 0);
  for (const auto &cs : g.computeSets) {
    std::vector<std::size_t> inbound(tiles, 0);
    for (int v : cs.vertices) {
      const auto &vs = g.vertices[v];
      used[vs.tile] = true;
      for (std::size_t f = 0; f < vs.connection.size(); ++f) {
        const auto &slot = vs.instance->fields[f];
        // vertex state: a pointer and a size per vector (a list adds one per block), a word
        // per scalar
        bytes[vs.tile] += slot.list ? 8 + 8 * vs.connection[f].size() : slot.vector ? 8 : 4;
        for (const Tensor &t : vs.connection[f]) {
          const auto &var = g.variables[t.variable()];
          for (auto e : t.elements())
            if (var.tile[e] != vs.tile) inbound[vs.tile] += var.type.size();
        }
      }
    }
    for (unsigned t = 0; t < tiles; ++t) buffers[t] = std::max(buffers[t], inbound[t]);
  }
  es.tilesUsed = 0;
  for (unsigned t = 0; t < tiles; ++t) {
    bytes[t] += buffers[t];
    es.tilesUsed += used[t] ? 1 : 0;
    if (bytes[t] > g.target.getBytesPerTile()) {
      int biggest = -1;
      std::size_t most = 0;
      for (auto [var, b] : perVar[t])
        if (b > most) { most = b; biggest = var; }
      std::ostringstream s;
      s << "out of memory on tile " << t << ": " << bytes[t] << " bytes needed, "
        << g.target.getBytesPerTile() << " available";
      if (biggest >= 0)
        s << "; the largest tensor there is '" << g.variables[biggest].name << "' (" << most
          << " bytes on this tile)";
      if (buffers[t] > 0) s << "; exchange buffers take " << buffers[t] << " bytes";
      throw graph_memory_allocation_error(s.str());
    }
  }
  es.tileBytes = bytes;
}

void fillInitial(const Variable &var, std::vector<unsigned char> &out) {
  out.assign(var.n * var.type.size(), 0xff); // uninitialised memory: a NaN / all-ones pattern
  if (!var.hasInitial) return;
  for (std::size_t e = 0; e < var.n; ++e) {
    unsigned char *p = out.data() + e * var.type.size();
    const double x = var.initial;
    if (var.type == FLOAT) { float f = static_cast<float>(x); std::memcpy(p, &f, 4); }
    else if (var.type == HALF) { half h(static_cast<float>(x)); std::memcpy(p, &h, 2); }
    else if (var.type == INT) { int i = static_cast<int>(x); std::memcpy(p, &i, 4); }
    else if (var.type == UNSIGNED_INT) { unsigned u = static_cast<unsigned>(x); std::memcpy(p, &u, 4); }
    else if (var.type == UNSIGNED_SHORT) { unsigned short u = static_cast<unsigned short>(x); std::memcpy(p, &u, 2); }
    else { bool b = x != 0; std::memcpy(p, &b, 1); }
  }
}

void execute(EngineState &es, int csId) {
  GraphState &g = *es.graph;
  const auto &cs = g.computeSets.at(csId);
  const unsigned tiles = g.target.getNumTiles();
  std::vector<std::size_t> in(tiles, 0), out(tiles, 0);
  // local[k][f][p]: vertex k's copy of part p of field f
  std::vector<std::vector<std::vector<std::vector<unsigned char>>>> local(cs.vertices.size());
  // exchange in: each vertex gets its own copy of what it reads
  for (std::size_t k = 0; k < cs.vertices.size(); ++k) {
    auto &vs = g.vertices[cs.vertices[k]];
    local[k].resize(vs.connection.size());
    for (std::size_t f = 0; f < vs.connection.size(); ++f) {
      const auto &slot = vs.instance->fields[f];
      if (slot.direction == Direction::State) {
        slot.set(vs.value[f]);
        continue;
      }
      const auto &parts = vs.connection[f];
      local[k][f].resize(parts.size());
      std::vector<void *> ptrs(parts.size());
      std::vector<std::size_t> sizes(parts.size());
      for (std::size_t p = 0; p < parts.size(); ++p) {
        const Tensor &t = parts[p];
        const auto &var = g.variables[t.variable()];
        const std::size_t size = var.type.size();
        auto &buf = local[k][f][p];
        buf.assign(std::max<std::size_t>(1, t.numElements()) * size, 0);
        const auto &src = es.storage[t.variable()];
        if (slot.direction != Direction::Out) {
          for (std::size_t i = 0; i < t.numElements(); ++i) {
            const auto e = t.elements()[i];
            std::memcpy(buf.data() + i * size, src.data() + e * size, size);
            if (var.tile[e] != vs.tile) in[vs.tile] += size;
          }
        }
        ptrs[p] = buf.data();
        sizes[p] = t.numElements();
      }
      slot.bind(ptrs.data(), sizes.data(), parts.size());
    }
  }
  // compute: vertices of a tile share its six worker contexts round-robin
  std::map<int, std::vector<unsigned long long>> contexts;
  std::map<int, unsigned> placed;
  for (std::size_t k = 0; k < cs.vertices.size(); ++k) {
    if (k % 64 == 0) es.progress.report("run", es.counters, k, cs.vertices.size());
    const int v = cs.vertices[k];
    auto &vs = g.vertices[v];
    auto &ctx = contexts[vs.tile];
    ctx.resize(WORKERS, 0);
    const unsigned workers = vs.instance->multi() ? WORKERS : 1;
    for (unsigned w = 0; w < workers; ++w) {
      fieldAccesses = 0;
      bool done = false;
      try {
        done = vs.instance->run(w);
      } catch (const FieldIndexError &e) {
        throw poplar_error(outOfRange(g, v, e, vs.instance->multi() ? int(w) : -1));
      }
      if (!done) throw poplar_error(describeVertex(g, v) + ": compute() returned false");
      const unsigned slot = vs.instance->multi() ? w : placed[vs.tile]++ % WORKERS;
      ctx[slot] += VERTEX_OVERHEAD_INSTRUCTIONS + INSTRUCTIONS_PER_ACCESS * fieldAccesses;
    }
  }
  unsigned long long compute = 0;
  for (const auto &[tile, ctx] : contexts)
    compute = std::max(compute, WORKERS * *std::max_element(ctx.begin(), ctx.end()));
  // exchange out: written elements go back to the tiles that hold them
  for (std::size_t k = 0; k < cs.vertices.size(); ++k) {
    auto &vs = g.vertices[cs.vertices[k]];
    for (std::size_t f = 0; f < vs.connection.size(); ++f) {
      const auto &slot = vs.instance->fields[f];
      if (slot.direction == Direction::In || slot.direction == Direction::State) continue;
      for (std::size_t p = 0; p < vs.connection[f].size(); ++p) {
        const Tensor &t = vs.connection[f][p];
        const auto &var = g.variables[t.variable()];
        const std::size_t size = var.type.size();
        auto &dst = es.storage[t.variable()];
        for (std::size_t i = 0; i < t.numElements(); ++i) {
          const auto e = t.elements()[i];
          std::memcpy(dst.data() + e * size, local[k][f][p].data() + i * size, size);
          if (var.tile[e] != vs.tile) out[var.tile[e]] += size;
        }
      }
    }
  }
  const std::size_t maxIn = *std::max_element(in.begin(), in.end());
  const std::size_t maxOut = *std::max_element(out.begin(), out.end());
  const unsigned bpc = g.target.getExchangeBytesPerCycle();
  const unsigned long long exchange = ceilDiv(maxIn, bpc) + ceilDiv(maxOut, bpc);
  for (Counters *c : {&es.counters, &es.perComputeSet[csId]}) {
    c->compute += compute;
    c->exchange += exchange;
    for (unsigned t = 0; t < tiles; ++t) c->exchangeBytes += in[t] + out[t];
    c->sync += SYNC_CYCLES;
    c->supersteps += 1;
  }
}

void copyStep(EngineState &es, const program::Step &s) {
  GraphState &g = *es.graph;
  if (s.kind == program::Step::COPY) {
    const auto &sv = g.variables[s.src.variable()];
    const auto &dv = g.variables[s.dst.variable()];
    const std::size_t size = sv.type.size();
    std::vector<std::size_t> in(g.target.getNumTiles(), 0);
    std::vector<unsigned char> tmp(s.src.numElements() * size);
    for (std::size_t i = 0; i < s.src.numElements(); ++i)
      std::memcpy(tmp.data() + i * size, es.storage[s.src.variable()].data() + s.src.elements()[i] * size, size);
    for (std::size_t i = 0; i < s.dst.numElements(); ++i) {
      const auto e = s.dst.elements()[i];
      std::memcpy(es.storage[s.dst.variable()].data() + e * size, tmp.data() + i * size, size);
      if (sv.tile[s.src.elements()[i]] != dv.tile[e]) in[dv.tile[e]] += size;
    }
    es.counters.exchange += ceilDiv(*std::max_element(in.begin(), in.end()),
                                    g.target.getExchangeBytesPerCycle());
    es.counters.sync += SYNC_CYCLES;
    es.counters.supersteps += 1;
    return;
  }
  auto it = es.streams.find(s.stream.handle());
  if (it == es.streams.end())
    throw stream_connection_error("stream '" + s.stream.handle() + "' is not connected");
  const bool toDevice = s.kind == program::Step::COPY_TO_DEVICE;
  const Tensor &t = toDevice ? s.dst : s.src;
  const std::size_t size = t.elementType().size();
  auto *host = static_cast<unsigned char *>(it->second);
  auto &mem = es.storage[t.variable()];
  for (std::size_t i = 0; i < t.numElements(); ++i) {
    unsigned char *dev = mem.data() + t.elements()[i] * size;
    if (toDevice) std::memcpy(dev, host + i * size, size);
    else std::memcpy(host + i * size, dev, size);
  }
  es.counters.hostBytes += t.numElements() * size;
}

void runProgram(EngineState &es, const program::Program &p) {
  const auto &s = p.step();
  switch (s.kind) {
  case program::Step::SEQUENCE:
    for (const auto &c : s.children) runProgram(es, c);
    break;
  case program::Step::EXECUTE:
    es.progress.report("run", es.counters);
    execute(es, s.computeSet);
    break;
  default:
    copyStep(es, s);
  }
}

// The supersteps a program runs: one per Execute and per device-to-device Copy.
unsigned long long countSupersteps(const program::Program &p) {
  const auto &s = p.step();
  if (s.kind == program::Step::SEQUENCE) {
    unsigned long long n = 0;
    for (const auto &c : s.children) n += countSupersteps(c);
    return n;
  }
  return s.kind == program::Step::EXECUTE || s.kind == program::Step::COPY ? 1 : 0;
}

void writeStats(const EngineState &es) {
  const char *path = std::getenv("KERNELC_IPU_STATS");
  if (path == nullptr) return;
  const auto &c = es.counters;
  std::size_t maxBytes = 0, maxTile = 0;
  for (std::size_t t = 0; t < es.tileBytes.size(); ++t)
    if (es.tileBytes[t] > maxBytes) { maxBytes = es.tileBytes[t]; maxTile = t; }
  std::ofstream out(path);
  out << "{\"tiles_used\": " << es.tilesUsed << ", \"max_tile_bytes\": " << maxBytes
      << ", \"max_tile\": " << maxTile << ", \"compute_cycles\": " << c.compute
      << ", \"exchange_cycles\": " << c.exchange << ", \"sync_cycles\": " << c.sync
      << ", \"total_cycles\": " << c.compute + c.exchange + c.sync
      << ", \"exchange_bytes\": " << c.exchangeBytes << ", \"host_bytes\": " << c.hostBytes
      << ", \"supersteps\": " << c.supersteps << ", \"vertices\": " << es.graph->vertices.size()
      << ", \"compute_sets\": {";
  // per compute set (by its name): [compute, exchange, sync] cycles over its supersteps
  const char *sep = "";
  for (const auto &[id, own] : es.perComputeSet) {
    out << sep << '"' << es.graph->computeSets.at(id).name << "\": [" << own.compute << ", "
        << own.exchange << ", " << own.sync << ']';
    sep = ", ";
  }
  out << "}}\n";
}

} // namespace
} // namespace model

Engine::Engine(Graph &graph, const program::Program &prog, const OptionFlags &)
    : state_(std::make_unique<model::EngineState>()) {
  state_->graph = graph.state();
  state_->prog = prog;
  state_->progress.supersteps = model::countSupersteps(prog);
  state_->progress.report("check", state_->counters);
  model::checkMapping(*state_->graph);
  model::checkVertices(*state_->graph);
  model::checkRaces(*state_->graph);
  model::checkMemory(*state_);
  for (const auto &var : state_->graph->variables) {
    state_->storage.emplace_back();
    model::fillInitial(var, state_->storage.back());
  }
}

Engine::~Engine() = default;

void Engine::load(Device &) { state_->loaded = true; }

void Engine::connectStream(const std::string &handle, void *p) {
  for (const auto &s : state_->graph->streams) {
    if (s.handle() == handle) {
      state_->streams[handle] = p;
      return;
    }
  }
  throw stream_connection_error("no stream named '" + handle + "'");
}

void Engine::run(unsigned prog) {
  if (!state_->loaded) throw poplar_error("Engine::run before Engine::load");
  if (prog != 0) throw poplar_error("the engine holds one program (index 0)");
  model::runProgram(*state_, state_->prog);
  model::writeStats(*state_);
}

void Engine::printProfileSummary(std::ostream &out, const OptionFlags &) const {
  const auto &c = state_->counters;
  const double clock = state_->graph->target.getTileClockFrequency();
  const unsigned long long total = c.compute + c.exchange + c.sync;
  out << "kernelc IPU model (modelled cycles, not measured)\n"
      << "  tiles used:      " << state_->tilesUsed << "\n"
      << "  supersteps:      " << c.supersteps << "\n"
      << "  compute cycles:  " << c.compute << "\n"
      << "  exchange cycles: " << c.exchange << "\n"
      << "  sync cycles:     " << c.sync << "\n"
      << "  total cycles:    " << total << " (" << total / clock * 1e6 << " us at "
      << clock / 1e9 << " GHz)\n"
      << "  host bytes:      " << c.hostBytes << "\n";
}

} // namespace poplar
