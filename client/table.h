// Plain-text tables with aligned columns, for the listing subcommands.
#ifndef CONVNET_CLIENT_TABLE_H_
#define CONVNET_CLIENT_TABLE_H_

#include <string>
#include <vector>

namespace convnet::client {

// Prints `rows` (the first is the header) to stdout, each column padded to its
// widest cell and separated by two spaces.
void PrintTable(const std::vector<std::vector<std::string>>& rows);

}  // namespace convnet::client

#endif  // CONVNET_CLIENT_TABLE_H_
