// JobReport::timeline_svg: a Gantt chart of a job, one row per worker slot,
// written out as SVG text so that no plotting library is needed.
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

constexpr double kWidth = 960;
constexpr double kLabelWidth = 150;  // lane names left of the plot
constexpr double kRightMargin = 20;
constexpr double kTop = 58;          // title and legend
constexpr double kAxisHeight = 36;
constexpr double kPlotWidth = kWidth - kLabelWidth - kRightMargin;

const char* colour_of(RankStatus status) {
  switch (status) {
    case RankStatus::kSucceeded: return "#4c78a8";
    case RankStatus::kFailed: return "#e45756";
    default: return "#9d9d9d";
  }
}

std::string escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// A tick step of 1, 2 or 5 times a power of ten giving at most ~8 ticks.
double tick_step(double span_s) {
  const double raw = std::max(span_s, 1e-3) / 8;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double factor : {1.0, 2.0, 5.0}) {
    if (factor * power >= raw) return factor * power;
  }
  return 10 * power;
}

}  // namespace

std::string JobReport::timeline_svg() const {
  const size_t lane_count = std::max<size_t>(lanes.size(), 1);
  // Rows shrink for big farms so the picture stays a page tall; labels go when they would not fit.
  const double row = std::clamp(640.0 / static_cast<double>(lane_count), 3.0, 22.0);
  const bool lane_labels = row >= 9;
  const double plot_height = row * static_cast<double>(lane_count);
  const double height = kTop + plot_height + kAxisHeight;
  const double wall_s = std::max(static_cast<double>(wall.count()) / 1000.0, 1e-3);
  auto x_of = [&](std::chrono::milliseconds t) {
    return kLabelWidth + kPlotWidth * (static_cast<double>(t.count()) / 1000.0) / wall_s;
  };

  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
      "font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"11\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      kWidth, height, kWidth, height);
  if (!paused_stretches.empty()) {  // grey, hatched: no rank can be dispatched there
    svg +=
        "<defs><pattern id=\"paused\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
        "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#d9d9d9\"/>"
        "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#8c8c8c\" stroke-width=\"2\"/></pattern></defs>\n";
  }
  absl::StrAppendFormat(&svg,
                        "<text x=\"%.0f\" y=\"18\" font-size=\"14\" font-weight=\"bold\">job %s: %d ranks, wall %.3f s, "
                        "speedup %.2f on %d slot%s (efficiency %.0f%%)</text>\n",
                        kLabelWidth, escaped(job_id), ranks, static_cast<double>(wall.count()) / 1000.0, speedup,
                        slots, slots == 1 ? "" : "s", 100.0 * efficiency);
  // Legend.
  double legend_x = kLabelWidth;
  std::vector<std::pair<const char*, const char*>> legend = {
      {"succeeded", colour_of(RankStatus::kSucceeded)},
      {"failed", colour_of(RankStatus::kFailed)},
      {"cancelled", colour_of(RankStatus::kCancelled)},
      {"no rank running yet / any more (submit, dispatch, collect)", "#fde7c9"}};
  if (!paused_stretches.empty()) legend.emplace_back("worker paused", "url(#paused)");
  for (auto [label, colour] : legend) {
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.0f\" y=\"30\" width=\"12\" height=\"12\" fill=\"%s\" stroke=\"#888\" "
                          "stroke-width=\"0.5\"/><text x=\"%.0f\" y=\"40\">%s</text>\n",
                          legend_x, colour, legend_x + 16, label);
    legend_x += 16 + 7.0 * static_cast<double>(std::string_view(label).size()) + 18;
  }

  // Worker bands: alternate shading so a worker's slots read as one group.
  for (size_t w = 0; w < workers.size(); ++w) {
    const WorkerReport& worker = workers[w];
    const double y = kTop + row * worker.first_lane;
    absl::StrAppendFormat(&svg, "<rect x=\"%.0f\" y=\"%.2f\" width=\"%.0f\" height=\"%.2f\" fill=\"%s\"/>\n",
                          kLabelWidth, y, kPlotWidth, row * worker.slots, w % 2 == 0 ? "#f4f4f4" : "#ffffff");
    if (!lane_labels) {
      absl::StrAppendFormat(&svg, "<text x=\"%.0f\" y=\"%.2f\" text-anchor=\"end\">%s (%d)</text>\n",
                            kLabelWidth - 6, y + std::min(row * worker.slots, 14.0) - 2, escaped(worker.worker),
                            worker.slots);
    }
  }
  if (lane_labels) {
    for (size_t lane = 0; lane < lanes.size(); ++lane) {
      absl::StrAppendFormat(&svg, "<text x=\"%.0f\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n", kLabelWidth - 6,
                            kTop + row * static_cast<double>(lane) + row / 2 + 4, escaped(lanes[lane]));
    }
  }

  // Where no rank ran at all: before the first start and after the last end.
  if (!timeline.empty()) {
    std::chrono::milliseconds first = timeline.front().start, last = timeline.front().end;
    for (const TimelineBar& bar : timeline) {
      first = std::min(first, bar.start);
      last = std::max(last, bar.end);
    }
    for (auto [from, to] : {std::pair{std::chrono::milliseconds(0), first}, std::pair{last, wall}}) {
      if (to > from) {
        absl::StrAppendFormat(&svg, "<rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%.2f\" fill=\"#fde7c9\"/>\n",
                              x_of(from), kTop, x_of(to) - x_of(from), plot_height);
      }
    }
  }

  // A paused worker's lanes, behind its ranks (a rank it had started runs on).
  for (const PausedStretch& stretch : paused_stretches) {
    absl::StrAppendFormat(&svg,
                          "<rect class=\"paused\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                          "fill=\"url(#paused)\"><title>paused %.3f s: %s</title></rect>\n",
                          x_of(stretch.start), kTop + row * stretch.first_lane,
                          std::max(x_of(stretch.end) - x_of(stretch.start), 0.5), row * stretch.lanes,
                          static_cast<double>((stretch.end - stretch.start).count()) / 1000.0,
                          escaped(stretch.reason));
  }

  const double gap = row >= 6 ? 1.0 : 0.0;
  for (const TimelineBar& bar : timeline) {
    const double x = x_of(bar.start);
    const double width = std::max(x_of(bar.end) - x, 0.5);
    const double y = kTop + row * bar.lane + gap;
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\" stroke=\"white\" "
                          "stroke-width=\"0.5\"><title>rank %d on %s: %.3f s, %s</title></rect>\n",
                          x, y, width, row - 2 * gap, colour_of(bar.status), bar.rank,
                          escaped(lanes[static_cast<size_t>(bar.lane)]),
                          static_cast<double>((bar.end - bar.start).count()) / 1000.0, to_string(bar.status));
    const std::string label = absl::StrCat(bar.rank);
    if (row >= 11 && width >= 6.5 * static_cast<double>(label.size()) + 4) {
      absl::StrAppendFormat(&svg, "<text x=\"%.2f\" y=\"%.2f\" fill=\"white\" text-anchor=\"middle\">%s</text>\n",
                            x + width / 2, y + row / 2 + 3, label);
    }
  }

  // Time axis.
  const double axis_y = kTop + plot_height;
  absl::StrAppendFormat(&svg, "<line x1=\"%.0f\" y1=\"%.2f\" x2=\"%.0f\" y2=\"%.2f\" stroke=\"#333\"/>\n", kLabelWidth,
                        axis_y, kLabelWidth + kPlotWidth, axis_y);
  const double step = tick_step(wall_s);
  for (int i = 0; i * step <= wall_s * (1 + 1e-9); ++i) {
    const double t = i * step;
    const double x = kLabelWidth + kPlotWidth * t / wall_s;
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333\"/>"
                          "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%s</text>\n",
                          x, axis_y, x, axis_y + 4, x, axis_y + 16, absl::StrFormat("%g", t));
  }
  absl::StrAppendFormat(&svg, "<text x=\"%.0f\" y=\"%.2f\" text-anchor=\"middle\">seconds since the job was submitted</text>\n",
                        kLabelWidth + kPlotWidth / 2, axis_y + 31);
  svg += "</svg>\n";
  return svg;
}

}  // namespace pesc
