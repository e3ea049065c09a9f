// libFuzzer target: the IDX parser (core/idx.h). The same bytes are parsed as
// images and as labels; an input that starts with the gzip magic is also
// written to a file and read back through ReadMaybeGzipFile (the only entry
// to the gunzip path, which takes a path), and what it decompresses to is
// parsed in turn. Any outcome but a crash or a sanitizer report is fine; a
// successful parse must agree with its own header.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

#include "absl/strings/string_view.h"
#include "core/idx.h"

namespace {

void ParseBoth(absl::string_view bytes) {
  absl::StatusOr<std::vector<uint8_t>> images = convnet::ParseIdxImages(bytes);
  if (images.ok() && images->size() % (28 * 28) != 0) std::abort();
  absl::StatusOr<std::vector<uint8_t>> labels = convnet::ParseIdxLabels(bytes);
  if (labels.ok()) {
    for (uint8_t label : *labels) {
      if (label > 9) std::abort();
    }
  }
}

// One scratch file per process, under $TMPDIR (scripts/fuzz points it at a
// directory it removes afterwards).
const std::string& ScratchPath() {
  static const std::string* path = [] {
    const char* tmp = std::getenv("TMPDIR");
    return new std::string(std::string(tmp != nullptr ? tmp : "/tmp") + "/convnet-idx-fuzz-" +
                           std::to_string(getpid()) + ".gz");
  }();
  return *path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  ParseBoth(bytes);
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
    std::FILE* file = std::fopen(ScratchPath().c_str(), "wb");
    if (file == nullptr) std::abort();
    if (std::fwrite(data, 1, size, file) != size) std::abort();
    std::fclose(file);
    absl::StatusOr<std::string> contents = convnet::ReadMaybeGzipFile(ScratchPath());
    if (contents.ok()) ParseBoth(*contents);
  }
  return 0;
}
