// Reading 28x28 grey-scale images from PGM files (netpbm), the simplest image
// format that common tools write (e.g. `convert digit.png -resize 28x28! digit.pgm`).
#ifndef CONVNET_CLIENT_PGM_H_
#define CONVNET_CLIENT_PGM_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace convnet::client {

// Parses a binary ("P5") or plain ("P2") PGM image of exactly 28x28 pixels
// (comments allowed in the header; maxval 1..65535) and returns its 784 pixels
// scaled to 0..255, row-major. MNIST draws light digits on a dark background
// (0 = background); an image drawn dark on light needs inverting.
// INVALID_ARGUMENT naming the problem (wrong magic, size other than 28x28,
// bad maxval, a sample above maxval, a truncated body).
absl::StatusOr<std::vector<uint8_t>> ParsePgm(absl::string_view bytes);

// Reads `path` and parses it: ReadFile's errors naming the path (NOT_FOUND
// when it is missing), ParsePgm's prefixed with the path.
absl::StatusOr<std::vector<uint8_t>> ReadPgmFile(const std::string& path);

}  // namespace convnet::client

#endif  // CONVNET_CLIENT_PGM_H_
