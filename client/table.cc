#include "client/table.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace convnet::client {

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t column = 0; column < row.size(); ++column) {
      widths[column] = std::max(widths[column], row[column].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t column = 0; column < row.size(); ++column) {
      if (column + 1 == row.size()) {
        line += row[column];
      } else {
        absl::StrAppendFormat(&line, "%-*s  ", widths[column], row[column]);
      }
    }
    absl::PrintF("%s\n", line);
  }
}

}  // namespace convnet::client
