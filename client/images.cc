#include "client/images.h"

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/flags.h"
#include "client/pgm.h"
#include "core/idx.h"
#include "core/shape.h"

namespace convnet::client {
namespace {

std::string BaseName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

absl::StatusOr<std::vector<InputImage>> LoadFromIdx(LabelsNeeded labels_needed) {
  const std::string images_path = absl::GetFlag(FLAGS_images);
  const std::string labels_path = absl::GetFlag(FLAGS_labels);
  const int64_t index = absl::GetFlag(FLAGS_index);
  const int64_t count = absl::GetFlag(FLAGS_count);
  if (labels_needed == LabelsNeeded::kRequired && labels_path.empty()) {
    return absl::InvalidArgumentError(
        "--labels is required (the IDX label file matching --images)");
  }

  absl::StatusOr<std::vector<uint8_t>> pixels = ReadIdxImages(images_path);
  if (!pixels.ok()) return pixels.status();
  const int64_t available = static_cast<int64_t>(pixels->size() / kPixels);
  if (index < 0 || index >= available) {
    return absl::InvalidArgumentError(absl::StrCat("--index=", index, " is outside 0..",
                                                   available - 1, " (", images_path, " holds ",
                                                   available, " images)"));
  }
  if (count < 1 || count > available - index) {
    return absl::InvalidArgumentError(absl::StrCat("--count=", count, " is outside 1..",
                                                   available - index, " for --index=", index, " (",
                                                   images_path, " holds ", available, " images)"));
  }

  std::vector<uint8_t> labels;
  if (!labels_path.empty()) {
    absl::StatusOr<std::vector<uint8_t>> read = ReadIdxLabels(labels_path);
    if (!read.ok()) return read.status();
    if (static_cast<int64_t>(read->size()) != available) {
      return absl::InvalidArgumentError(absl::StrCat(labels_path, " holds ", read->size(),
                                                     " labels but ", images_path, " holds ",
                                                     available, " images"));
    }
    labels = *std::move(read);
  }

  const std::string name = BaseName(images_path);
  std::vector<InputImage> images;
  images.reserve(count);
  for (int64_t i = index; i < index + count; ++i) {
    InputImage image;
    image.source = absl::StrCat(name, "[", i, "]");
    image.pixels.assign(pixels->begin() + i * kPixels, pixels->begin() + (i + 1) * kPixels);
    if (!labels.empty()) image.label = labels[i];
    images.push_back(std::move(image));
  }
  return images;
}

}  // namespace

absl::StatusOr<std::vector<InputImage>> LoadInputImages(const std::vector<std::string>& pgm_paths,
                                                        LabelsNeeded labels_needed) {
  const bool from_idx = !absl::GetFlag(FLAGS_images).empty();
  if (from_idx && !pgm_paths.empty()) {
    return absl::InvalidArgumentError("give either PGM files or --images, not both");
  }
  if (from_idx) return LoadFromIdx(labels_needed);
  if (pgm_paths.empty()) {
    return absl::InvalidArgumentError(
        "no images: give PGM files, or --images=FILE (IDX) with --index and --count");
  }
  if (labels_needed == LabelsNeeded::kRequired) {
    return absl::InvalidArgumentError(
        "labelled examples are needed: use --images and --labels (IDX files), not PGM files");
  }
  std::vector<InputImage> images;
  for (const std::string& path : pgm_paths) {
    absl::StatusOr<std::vector<uint8_t>> pixels = ReadPgmFile(path);
    if (!pixels.ok()) return pixels.status();
    images.push_back(InputImage{path, *std::move(pixels), std::nullopt});
  }
  return images;
}

convnet::v1::Image ToProtoImage(const InputImage& image) {
  convnet::v1::Image proto;
  proto.set_pixels(image.pixels.data(), image.pixels.size());
  return proto;
}

}  // namespace convnet::client
