#include "client/ascii_art.h"

#include "core/shape.h"

namespace convnet::client {

std::vector<std::string> RenderAsciiArt(absl::Span<const uint8_t> pixels) {
  static constexpr char kRamp[] = " .:-=+*#%@";
  static constexpr int kLevels = sizeof(kRamp) - 1;
  std::vector<std::string> lines;
  lines.reserve(kInputSide / 2);
  for (int row = 0; row + 1 < kInputSide; row += 2) {
    std::string line(kInputSide, ' ');
    for (int column = 0; column < kInputSide; ++column) {
      int mean = (pixels[row * kInputSide + column] + pixels[(row + 1) * kInputSide + column]) / 2;
      line[column] = kRamp[mean * kLevels / 256];
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace convnet::client
