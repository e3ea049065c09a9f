#include "client/pgm.h"

#include <cctype>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/file_util.h"
#include "core/shape.h"

namespace convnet::client {
namespace {

// Reads the header's and a plain body's whitespace-separated decimal numbers,
// skipping '#' comments (which run to the end of the line).
class PgmTokenizer {
 public:
  explicit PgmTokenizer(absl::string_view bytes) : bytes_(bytes) {}

  absl::StatusOr<uint32_t> NextNumber(absl::string_view what) {
    SkipSpaceAndComments();
    size_t start = position_;
    while (position_ < bytes_.size() &&
           std::isdigit(static_cast<unsigned char>(bytes_[position_]))) {
      ++position_;
    }
    uint32_t value = 0;
    if (position_ == start || !absl::SimpleAtoi(bytes_.substr(start, position_ - start), &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("PGM: expected a decimal number for ", what, " at byte ", start));
    }
    return value;
  }

  // After the header: exactly one whitespace byte separates maxval from a
  // binary body.
  absl::Status SkipSingleWhitespace() {
    if (position_ >= bytes_.size() ||
        !std::isspace(static_cast<unsigned char>(bytes_[position_]))) {
      return absl::InvalidArgumentError("PGM: no whitespace after the header's maxval");
    }
    ++position_;
    return absl::OkStatus();
  }

  absl::string_view Rest() const { return bytes_.substr(position_); }

 private:
  void SkipSpaceAndComments() {
    while (position_ < bytes_.size()) {
      char c = bytes_[position_];
      if (c == '#') {
        while (position_ < bytes_.size() && bytes_[position_] != '\n') ++position_;
      } else if (std::isspace(static_cast<unsigned char>(c))) {
        ++position_;
      } else {
        return;
      }
    }
  }

  absl::string_view bytes_;
  size_t position_ = 0;
};

uint8_t ScaleTo255(uint32_t sample, uint32_t maxval) {
  return static_cast<uint8_t>((sample * 255u + maxval / 2) / maxval);
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> ParsePgm(absl::string_view bytes) {
  if (bytes.size() < 2 || bytes[0] != 'P' || (bytes[1] != '5' && bytes[1] != '2')) {
    return absl::InvalidArgumentError(
        "PGM: not a PGM image (expected the magic \"P5\" or \"P2\" at the start)");
  }
  const bool plain = bytes[1] == '2';
  PgmTokenizer tokens(bytes.substr(2));
  absl::StatusOr<uint32_t> width = tokens.NextNumber("the width");
  if (!width.ok()) return width.status();
  absl::StatusOr<uint32_t> height = tokens.NextNumber("the height");
  if (!height.ok()) return height.status();
  absl::StatusOr<uint32_t> maxval = tokens.NextNumber("maxval");
  if (!maxval.ok()) return maxval.status();
  if (*width != kInputSide || *height != kInputSide) {
    return absl::InvalidArgumentError(absl::StrCat("PGM: the image is ", *width, "x", *height,
                                                   "; the network takes 28x28 images"));
  }
  if (*maxval == 0 || *maxval > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("PGM: maxval is ", *maxval, "; it must be in 1..65535"));
  }

  std::vector<uint8_t> pixels(kPixels);
  if (plain) {
    for (int i = 0; i < kPixels; ++i) {
      absl::StatusOr<uint32_t> sample = tokens.NextNumber(absl::StrCat("pixel ", i));
      if (!sample.ok()) return sample.status();
      if (*sample > *maxval) {
        return absl::InvalidArgumentError(
            absl::StrCat("PGM: pixel ", i, " is ", *sample, ", above maxval ", *maxval));
      }
      pixels[i] = ScaleTo255(*sample, *maxval);
    }
    return pixels;
  }

  if (absl::Status status = tokens.SkipSingleWhitespace(); !status.ok()) return status;
  const size_t bytes_per_sample = *maxval < 256 ? 1 : 2;
  absl::string_view body = tokens.Rest();
  if (body.size() < kPixels * bytes_per_sample) {
    return absl::InvalidArgumentError(absl::StrCat("PGM: the body has ", body.size(),
                                                   " bytes; 28x28 pixels need ",
                                                   kPixels * bytes_per_sample));
  }
  for (int i = 0; i < kPixels; ++i) {
    uint32_t sample;
    if (bytes_per_sample == 1) {
      sample = static_cast<uint8_t>(body[i]);
    } else {  // 16-bit samples are big-endian.
      sample = (static_cast<uint32_t>(static_cast<uint8_t>(body[2 * i])) << 8) |
               static_cast<uint8_t>(body[2 * i + 1]);
    }
    if (sample > *maxval) {
      return absl::InvalidArgumentError(
          absl::StrCat("PGM: pixel ", i, " is ", sample, ", above maxval ", *maxval));
    }
    pixels[i] = ScaleTo255(sample, *maxval);
  }
  return pixels;
}

absl::StatusOr<std::vector<uint8_t>> ReadPgmFile(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFile(path);
  if (!contents.ok()) return contents.status();
  absl::StatusOr<std::vector<uint8_t>> pixels = ParsePgm(*contents);
  if (!pixels.ok()) {
    return absl::Status(pixels.status().code(),
                        absl::StrCat(path, ": ", pixels.status().message()));
  }
  return pixels;
}

}  // namespace convnet::client
