// Cross-rank model check: one all_gather of a 64-bit FNV-1a hash of every parameter's and buffer's
// "kind name dtype [shape]". Only when hashes differ do ranks exchange per-entry hashes and the
// text of the first differing entry, so that every rank throws the same, specific message.
#include <algorithm>
#include <sstream>

#include "dist/comm_device.h"
#include "dml/dist/broadcast_module.h"
#include "dml/util/error.h"

namespace dml {
namespace {

constexpr int64_t kEntryTextBytes = 256;

int64_t fnv1a(const std::string& text, uint64_t hash = 1469598103934665603ULL) {
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return static_cast<int64_t>(hash);
}

std::vector<std::string> describe_entries(const torch::nn::Module& module) {
  std::vector<std::string> entries;
  auto add = [&](const char* kind, const std::string& name, const torch::Tensor& t) {
    std::ostringstream out;
    out << kind << " " << name << " ";
    if (t.defined()) {
      out << c10::toString(t.scalar_type()) << " " << t.sizes();
    } else {
      out << "undefined";
    }
    entries.push_back(out.str());
  };
  for (const auto& item : module.named_parameters(/*recurse=*/true)) add("parameter", item.key(), item.value());
  for (const auto& item : module.named_buffers(/*recurse=*/true)) add("buffer", item.key(), item.value());
  return entries;
}

torch::Tensor gather_int64(Communicator& comm, const std::vector<int64_t>& values) {
  torch::Tensor mine = torch::tensor(values, torch::kInt64).to(dist::comm_device(comm));
  return comm.all_gather(mine).cpu();
}

}  // namespace

void check_same_module(Communicator& comm, const torch::nn::Module& module, const std::string& what) {
  const std::vector<std::string> entries = describe_entries(module);
  std::vector<int64_t> entry_hashes;
  uint64_t total = 1469598103934665603ULL;
  for (const auto& e : entries) {
    entry_hashes.push_back(fnv1a(e));
    total = static_cast<uint64_t>(fnv1a(e + "\n", total));
  }
  const int world = comm.world_size();
  const torch::Tensor totals = gather_int64(comm, {static_cast<int64_t>(total), static_cast<int64_t>(entries.size())});
  auto total_of = [&](int r) { return totals[2 * r].item<int64_t>(); };
  auto count_of = [&](int r) { return totals[2 * r + 1].item<int64_t>(); };
  std::vector<int> differing;
  int64_t max_count = 0;
  for (int r = 0; r < world; ++r) {
    if (total_of(r) != total_of(0)) differing.push_back(r);
    max_count = std::max(max_count, count_of(r));
  }
  if (differing.empty()) return;

  // Mismatch (rare path): find the first differing entry of the first differing rank.
  std::vector<int64_t> padded(max_count, 0);
  std::copy(entry_hashes.begin(), entry_hashes.end(), padded.begin());
  const torch::Tensor all_hashes = gather_int64(comm, padded).view({world, max_count});
  const int d = differing.front();
  int64_t index = 0;
  while (index < max_count && all_hashes[d][index].item<int64_t>() == all_hashes[0][index].item<int64_t>()) ++index;
  std::vector<int64_t> text(kEntryTextBytes, 0);
  const std::string mine = index < static_cast<int64_t>(entries.size()) ? entries[index] : "no entry";
  std::copy_n(mine.begin(), std::min<int64_t>(mine.size(), kEntryTextBytes - 1), text.begin());
  const torch::Tensor texts = gather_int64(comm, text).view({world, kEntryTextBytes});
  auto text_of = [&](int r) {
    std::string s;
    for (int64_t k = 0; k < kEntryTextBytes && texts[r][k].item<int64_t>() != 0; ++k) {
      s.push_back(static_cast<char>(texts[r][k].item<int64_t>()));
    }
    return s;
  };
  std::ostringstream ranks;
  for (size_t k = 0; k < differing.size() && k < 16; ++k) ranks << (k ? ", " : "") << differing[k];
  throw Error(str("model differs across ranks: ", what, ": rank ", d, " has '", text_of(d), "' where rank 0 has '",
                  text_of(0), "' (entry ", index, "; rank 0 has ", count_of(0), " parameters+buffers, rank ", d,
                  " has ", count_of(d), "; ranks differing from rank 0: ", ranks.str(),
                  "); build the same model with the same options on every rank"));
}

}  // namespace dml
