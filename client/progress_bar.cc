#include "client/progress_bar.h"

#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_format.h"

namespace convnet::client {
namespace {

constexpr int kBarWidth = 30;

}  // namespace

ProgressBar::ProgressBar(FILE* out) : out_(out), terminal_(isatty(fileno(out)) == 1) {}

void ProgressBar::Update(absl::string_view label, int64_t done, int64_t total,
                         absl::string_view suffix) {
  if (label != label_) {
    label_ = std::string(label);
    quarters_printed_ = 0;
  }
  const double fraction =
      total > 0 ? std::clamp(static_cast<double>(done) / static_cast<double>(total), 0.0, 1.0)
                : 0.0;
  const int filled = static_cast<int>(fraction * kBarWidth);
  std::string line = absl::StrFormat("%s [%s%s] %3d%%  %d/%d  %s", label, std::string(filled, '#'),
                                     std::string(kBarWidth - filled, '-'),
                                     static_cast<int>(fraction * 100), done, total, suffix);
  if (terminal_) {
    // Pad with spaces to wipe a longer previous line.
    std::string padding(drawn_width_ > line.size() ? drawn_width_ - line.size() : 0, ' ');
    absl::FPrintF(out_, "\r%s%s", line, padding);
    std::fflush(out_);
    drawn_width_ = line.size();
    visible_ = true;
    return;
  }
  const int quarter = static_cast<int>(fraction * 4);
  if (quarter > quarters_printed_) {
    quarters_printed_ = quarter;
    absl::FPrintF(out_, "%s\n", line);
    std::fflush(out_);
  }
}

void ProgressBar::Clear() {
  if (!visible_) return;
  absl::FPrintF(out_, "\r%s\r", std::string(drawn_width_, ' '));
  std::fflush(out_);
  visible_ = false;
  drawn_width_ = 0;
}

}  // namespace convnet::client
