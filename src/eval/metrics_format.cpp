#include <algorithm>
#include <cstdio>
#include <set>

#include "dml/eval/retrieval_metrics.h"

namespace dml {
namespace {

std::string fixed4(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.4f", v);
  return buffer;
}

std::string json_number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.10g", v);
  return buffer;
}

std::string pad_left(const std::string& s, size_t width) {
  return std::string(width > s.size() ? width - s.size() : 0, ' ') + s;
}

}  // namespace

std::string format_metrics_table(const std::vector<std::pair<std::string, RetrievalMetrics>>& columns) {
  std::set<int64_t> all_ks;
  for (const auto& column : columns) all_ks.insert(column.second.ks.begin(), column.second.ks.end());

  // rows[r] = {label, value per column}
  std::vector<std::vector<std::string>> rows;
  for (int64_t k : all_ks) {
    std::vector<std::string> row{"Recall@" + std::to_string(k)};
    for (const auto& column : columns) {
      const auto& m = column.second;
      auto it = std::find(m.ks.begin(), m.ks.end(), k);
      const size_t j = static_cast<size_t>(it - m.ks.begin());
      row.push_back(it != m.ks.end() && j < m.recall_at_k.size() ? fixed4(m.recall_at_k[j]) : "-");
    }
    rows.push_back(row);
  }
  std::vector<std::string> p1{"P@1"}, rp{"R-Precision"}, map{"MAP@R"}, nmi{"NMI"};
  for (const auto& column : columns) {
    p1.push_back(fixed4(column.second.precision_at_1));
    rp.push_back(fixed4(column.second.r_precision));
    map.push_back(fixed4(column.second.map_at_r));
    nmi.push_back(column.second.nmi < 0 ? "-" : fixed4(column.second.nmi));
  }
  rows.insert(rows.end(), {p1, rp, map, nmi});

  std::vector<std::string> header{"metric"};
  for (const auto& column : columns) header.push_back(column.first);
  std::vector<size_t> width(header.size(), 0);
  for (size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  auto line = [&](const std::vector<std::string>& row) {
    std::string out = row[0] + std::string(width[0] - row[0].size(), ' ');
    for (size_t c = 1; c < row.size(); ++c) out += "  " + pad_left(row[c], width[c]);
    return out + "\n";
  };
  std::string table = line(header);
  for (const auto& row : rows) table += line(row);
  return table;
}

std::string metrics_json_fields(const RetrievalMetrics& m) {
  std::string out;
  for (size_t j = 0; j < m.ks.size() && j < m.recall_at_k.size(); ++j) {
    out += "\"recall@" + std::to_string(m.ks[j]) + "\":" + json_number(m.recall_at_k[j]) + ",";
  }
  out += "\"precision@1\":" + json_number(m.precision_at_1);
  out += ",\"r_precision\":" + json_number(m.r_precision);
  out += ",\"map@r\":" + json_number(m.map_at_r);
  out += ",\"nmi\":" + (m.nmi < 0 ? std::string("null") : json_number(m.nmi));
  return out;
}

}  // namespace dml
