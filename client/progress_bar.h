// A one-line progress bar. On a terminal it redraws itself in place; when the
// output is a file or a pipe (CI logs) it prints a plain line at every quarter
// instead, so logs stay short and readable.
#ifndef CONVNET_CLIENT_PROGRESS_BAR_H_
#define CONVNET_CLIENT_PROGRESS_BAR_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/string_view.h"

namespace convnet::client {

class ProgressBar {
 public:
  // Draws on `out` (not owned), e.g. stdout.
  explicit ProgressBar(FILE* out);

  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Shows `label [#####-----]  50%  done/total  suffix`. A new `label` starts
  // a new bar (e.g. the next epoch).
  void Update(absl::string_view label, int64_t done, int64_t total, absl::string_view suffix);

  // Removes a bar drawn on a terminal so that an ordinary line can follow.
  void Clear();

 private:
  FILE* out_;
  bool terminal_;
  bool visible_ = false;
  size_t drawn_width_ = 0;
  std::string label_;
  int quarters_printed_ = 0;
};

}  // namespace convnet::client

#endif  // CONVNET_CLIENT_PROGRESS_BAR_H_
