// A 28x28 image drawn with characters, for terminals.
#ifndef CONVNET_CLIENT_ASCII_ART_H_
#define CONVNET_CLIENT_ASCII_ART_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"

namespace convnet::client {

// Renders 784 pixels (0 = background) as 14 lines of 28 characters, one
// character per pixel column and per pair of pixel rows (terminal cells are
// about twice as tall as wide), darkest " " to brightest "@".
std::vector<std::string> RenderAsciiArt(absl::Span<const uint8_t> pixels);

}  // namespace convnet::client

#endif  // CONVNET_CLIENT_ASCII_ART_H_
